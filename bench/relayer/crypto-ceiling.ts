/**
 * The crypto ceiling of one relayer process: ring-signature verifications per second through the
 * RingVerifyPool (same thread count and backend as the relayer under test, a two-member ring
 * like app + one gateway) and supplier response signatures per second through RelaySigner on the
 * main thread (payload hash, signable hash, ECDSA), as the relayer signs every answer.
 */
import pino from 'pino';
import { sha256 } from '../../protocol/hash.js';
import { encodePoktHttpResponse, type RelayResponse } from '../../protocol/index.js';
import { RelaySigner } from '../../relayer/index.js';
import {
  DEFAULT_RING_VERIFY_POOL_CONFIG,
  RingVerifyPool,
  selectBackend,
  signRingSignature,
} from '../../rings/index.js';
import { APP, GATEWAY, SUPPLIER } from '../../test/e2e/localnet-fixtures.js';
import { measureOpsPerSecond } from '../report.js';

export async function verifyPoolOpsPerSecond(o: {
  threads: number;
  durationMs: number;
  warmupMs: number;
  /** Verifications per pool task (default: the pool's default, 16); 1 = one task per relay. */
  maxBatch?: number;
}): Promise<{ ops_per_second: number; inflight: number; max_batch: number }> {
  const ec = selectBackend('native');
  const ring = [APP.publicKey, GATEWAY.publicKey];
  const messages = Array.from({ length: 64 }, (_, i) =>
    sha256(new TextEncoder().encode(`relayer bench ${i}`)),
  );
  const sigs = messages.map((m) => signRingSignature(ec, ring, 1, GATEWAY.privateKey, m));
  const maxBatch = o.maxBatch ?? DEFAULT_RING_VERIFY_POOL_CONFIG.max_batch;
  const inflight = o.threads * DEFAULT_RING_VERIFY_POOL_CONFIG.max_batch * 4;
  const pool = new RingVerifyPool({
    ...DEFAULT_RING_VERIFY_POOL_CONFIG,
    max_batch: maxBatch,
    threads: o.threads,
    backend: 'native',
    task_timeout_ms: 0,
  });
  try {
    let next = 0;
    let done = 0;
    let counting = false;
    let stop = false;
    const runner = async (): Promise<void> => {
      while (!stop) {
        const k = next++ % sigs.length;
        const r = await pool.verify(sigs[k]!, messages[k]!, ring);
        if (!r.ok) throw new Error(`ring signature rejected in the pool: ${r.code}`);
        if (counting) done++;
      }
    };
    const runners = Array.from({ length: inflight }, () => runner());
    await new Promise((r) => setTimeout(r, o.warmupMs));
    counting = true;
    const start = performance.now();
    await new Promise((r) => setTimeout(r, o.durationMs));
    const elapsed = performance.now() - start;
    const measured = done;
    stop = true;
    await Promise.all(runners);
    return { ops_per_second: (measured * 1000) / elapsed, inflight, max_batch: maxBatch };
  } finally {
    await pool.close();
  }
}

export async function signerOpsPerSecond(o: { durationMs: number; warmupMs: number }): Promise<number> {
  const signer = new RelaySigner({ backend: selectBackend('native'), log: pino({ level: 'silent' }) }, [
    SUPPLIER.privateKey,
  ]);
  const header = {
    applicationAddress: APP.address,
    serviceId: 'anvil',
    sessionId: 'ab'.repeat(32),
    sessionStartBlockHeight: 5n,
    sessionEndBlockHeight: 8n,
  };
  const responses: RelayResponse[] = Array.from({ length: 64 }, (_, i) => ({
    meta: { sessionHeader: header, supplierOperatorSignature: Buffer.alloc(0) },
    payload: Buffer.from(
      encodePoktHttpResponse({
        statusCode: 200,
        headers: [['Content-Type', ['application/json']]],
        body: Buffer.from(`{"jsonrpc":"2.0","id":${i + 1},"result":"0x1"}`),
      }),
    ),
    payloadHash: Buffer.alloc(0),
    relayMinerError: undefined,
  }));
  let i = 0;
  const r = await measureOpsPerSecond(
    () => {
      const s = signer.sign(responses[i++ % responses.length]!, SUPPLIER.address);
      if (!s.ok) throw new Error(`signing failed: ${s.code}`);
    },
    { durationMs: o.durationMs, warmupMs: o.warmupMs },
  );
  return r.opsPerSecond;
}
