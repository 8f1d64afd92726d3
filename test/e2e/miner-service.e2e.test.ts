/**
 * The miner service end to end: a real relayer (relayer-fixtures.ts) and two miner replicas built
 * by `startMiner` on the same Redis namespace and localnet. Gateway-signed relays go through the
 * relayer over HTTP; the replicas follow the localnet through their own block feeds while the test
 * produces blocks one at a time. Every claim must land in its window with exactly the relays the
 * client saw succeed, the required proof must land and validate, and the ledger must add up. A
 * replica killed (connections dropped, nothing released) between claim and proof, or in the middle
 * of a session, is replaced within 5 s and nothing served is lost. The CLI process hands its
 * supplier over on SIGTERM and exits 0.
 *
 * testGenesis: 4-block sessions. Session [5, 8]: claim window [10, 14], proof window [14, 18],
 * settled at 18. Session [9, 12]: claim [14, 18], proof [18, 22], settled at 22.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { Registry } from 'prom-client';
import { AuthInfo, TxRaw } from 'cosmjs-types/cosmos/tx/v1beta1/tx';
import { afterEach, describe, expect, it } from 'vitest';
import type { RunningMiner } from '../../cmd/miner.js';
import {
  MinerLedger,
  SessionStore,
  createMinerLifecycleMetrics,
  settledClaimsFrom,
} from '../../miner/index.js';
import { bytesToHex } from '../../core/index.js';
import { pb, type SessionHeader } from '../../protocol/index.js';
import { freePort } from '../helpers/redis-server.js';
import { SUPPLIER } from './localnet-fixtures.js';
import { driveTo, minerConfigInput, sendRelays, startMinerReplica, waitFor } from './miner-fixtures.js';
import { startRelayerStack, type RelayerStack } from './relayer-fixtures.js';

const CUPR = 2n;
const silent = pino({ level: 'silent' });

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!().catch(() => undefined);
});

interface Harness {
  stack: RelayerStack;
  a: RunningMiner;
  b: RunningMiner;
  store: SessionStore;
  ledger: MinerLedger;
}

async function startStack(): Promise<Pick<Harness, 'stack' | 'store' | 'ledger'>> {
  const stack = await startRelayerStack();
  cleanups.push(() => stack.close());
  const keys = stack.keys;
  const store = new SessionStore({ redis: stack.redis, keys, log: silent }, { ttl_seconds: 3600 });
  const ledger = new MinerLedger({
    redis: stack.redis,
    keys,
    metrics: createMinerLifecycleMetrics(new Registry()),
  });
  return { stack, store, ledger };
}

async function replica(stack: RelayerStack, id: string): Promise<RunningMiner> {
  const m = await startMinerReplica(stack, id);
  cleanups.push(() => m.stop());
  return m;
}

async function start(): Promise<Harness> {
  const base = await startStack();
  const a = await replica(base.stack, 'miner-a');
  const b = await replica(base.stack, 'miner-b');
  return { ...base, a, b };
}

/** `{phase, result}` → value of ha_miner_tx_attempts_total on a replica. */
async function txAttempts(m: RunningMiner): Promise<Record<string, number>> {
  const metric = await m.registry.getSingleMetric('ha_miner_tx_attempts_total')!.get();
  return Object.fromEntries(
    metric.values.map((v) => [`${v.labels['phase']}:${v.labels['result']}`, v.value]),
  );
}

/** The replica holding SUPPLIER's lease, once exactly one does. */
async function owner(miners: RunningMiner[]): Promise<RunningMiner> {
  await waitFor(
    () => miners.filter((m) => m.owned().includes(SUPPLIER.address)).length === 1,
    5_000,
    'one replica to own the supplier',
  );
  return miners.find((m) => m.owned().includes(SUPPLIER.address))!;
}

/** Waits until the miners have put `n` relays of the session into its trie. */
async function consumed(h: Harness, header: SessionHeader, n: number): Promise<void> {
  await waitFor(
    async () => (await h.store.get(SUPPLIER.address, header.sessionId))?.relay_count === n,
    5_000,
    `${n} relays of session ${header.sessionId} consumed`,
  );
}

function txOf(stack: RelayerStack, hash: string | undefined): { height: number; code: number } {
  const tx = stack.chain.net.chain.tx(hash ?? '');
  return { height: tx?.height ?? -1, code: tx?.result.code ?? -1 };
}

function feeOf(stack: RelayerStack, hash: string): bigint {
  const tx = stack.chain.net.chain.tx(hash)!;
  return BigInt(AuthInfo.decode(TxRaw.decode(tx.bytes).authInfoBytes).fee!.amount[0]!.amount);
}

/** Relays and compute units of the root the chain holds for the session's claim. */
async function claimedTotals(
  stack: RelayerStack,
  header: SessionHeader,
): Promise<{ count: bigint; sum: bigint; status: pb.proofTypes.ClaimProofStatus }> {
  const claim = await stack.chain.query.getClaim(header.sessionId, SUPPLIER.address);
  const root = Buffer.from(claim.rootHash);
  return {
    count: root.readBigUInt64BE(40),
    sum: root.readBigUInt64BE(32),
    status: claim.proofValidationStatus,
  };
}

async function settledAt(stack: RelayerStack, height: number, sessionId: string): Promise<bigint> {
  const results = await stack.chain.query.getBlockResults(height);
  const s = settledClaimsFrom(results.finalizeBlockEvents, new Set([SUPPLIER.address])).find(
    (c) => c.sessionId === sessionId,
  );
  return s?.settledUpokt ?? -1n;
}

async function checkClaimed(
  h: Pick<Harness, 'stack' | 'store'>,
  header: SessionHeader,
  relays: number,
  window: [number, number],
): Promise<string> {
  const s = (await h.store.get(SUPPLIER.address, header.sessionId))!;
  const tx = txOf(h.stack, s.claim_tx_hash);
  expect({
    state: s.state,
    code: tx.code,
    inWindow: tx.height > window[0] && tx.height <= window[1],
  }).toEqual({
    state: 'claimed',
    code: 0,
    inWindow: true,
  });
  expect(await claimedTotals(h.stack, header)).toEqual({
    count: BigInt(relays),
    sum: BigInt(relays) * CUPR,
    status: pb.proofTypes.ClaimProofStatus.PENDING_VALIDATION,
  });
  return s.claim_tx_hash!;
}

async function checkProved(
  h: Pick<Harness, 'stack' | 'store'>,
  header: SessionHeader,
  relays: number,
  window: [number, number],
): Promise<string> {
  const s = (await h.store.get(SUPPLIER.address, header.sessionId))!;
  const tx = txOf(h.stack, s.proof_tx_hash);
  expect({
    state: s.state,
    code: tx.code,
    inWindow: tx.height > window[0] && tx.height <= window[1],
  }).toEqual({
    state: 'proved',
    code: 0,
    inWindow: true,
  });
  expect(await claimedTotals(h.stack, header)).toEqual({
    count: BigInt(relays),
    sum: BigInt(relays) * CUPR,
    status: pb.proofTypes.ClaimProofStatus.VALIDATED,
  });
  return s.proof_tx_hash!;
}

describe('miner service with a real relayer on the localnet', () => {
  it('claims and proves two sessions in their windows with exactly the relays served; the ledger adds up', async () => {
    const h = await start();
    const { stack, a, b } = h;
    const miners = [a, b];
    await owner(miners);
    expect(miners.filter((m) => m.isLeader).length).toBe(1);

    const first = await stack.session('anvil');
    expect([Number(first.sessionStartBlockHeight), Number(first.sessionEndBlockHeight)]).toEqual([5, 8]);
    const okFirst = await sendRelays(stack, first, 5);
    expect(okFirst).toBe(5);
    await consumed(h, first, okFirst);

    await driveTo(stack, miners, 9);
    const second = await stack.session('anvil');
    expect([Number(second.sessionStartBlockHeight), Number(second.sessionEndBlockHeight)]).toEqual([9, 12]);
    const okSecond = await sendRelays(stack, second, 3);
    expect(okSecond).toBe(3);
    await consumed(h, second, okSecond);

    // The first claim goes out at 10 (window opens) and lands at 11.
    await driveTo(stack, miners, 12);
    const claim1 = await checkClaimed(h, first, okFirst, [10, 14]);

    // At 14 the first proof and the second claim go out; both land at 15.
    await driveTo(stack, miners, 16);
    const proof1 = await checkProved(h, first, okFirst, [14, 18]);
    const claim2 = await checkClaimed(h, second, okSecond, [14, 18]);

    await driveTo(stack, miners, 20);
    const proof2 = await checkProved(h, second, okSecond, [18, 22]);

    // Settlements at 18 and 22 are read into the ledger by the owner.
    await driveTo(stack, miners, 22);
    const settled1 = await settledAt(stack, 18, first.sessionId);
    const settled2 = await settledAt(stack, 22, second.sessionId);
    expect(settled1).toBeGreaterThan(0n);
    expect(settled2).toBeGreaterThan(0n);
    expect(await h.ledger.get(SUPPLIER.address, first.sessionId)).toEqual({
      relays: { mined: 5n, claimed: 5n, proven: 5n },
      upokt: {
        settled_upokt: settled1,
        fee_estimated_upokt: 2n,
        fee_actual_upokt: feeOf(stack, claim1) + feeOf(stack, proof1),
      },
    });
    expect(await h.ledger.get(SUPPLIER.address, second.sessionId)).toEqual({
      relays: { mined: 3n, claimed: 3n, proven: 3n },
      upokt: {
        settled_upokt: settled2,
        fee_estimated_upokt: 2n,
        fee_actual_upokt: feeOf(stack, claim2) + feeOf(stack, proof2),
      },
    });

    // The owner serves its ops endpoints.
    const own = await owner(miners);
    const ready = await fetch(`http://127.0.0.1:${own.metricsPort}/ready`);
    expect({ status: ready.status, body: await ready.text() }).toEqual({ status: 200, body: 'READY' });
    const metrics = await (await fetch(`http://127.0.0.1:${own.metricsPort}/metrics`)).text();
    expect(metrics).toContain('ha_miner_ledger_relays_total{bucket="proven"} 8');
  }, 90_000);

  it('a replica killed between claim and proof is replaced within 5 s and the proof still lands', async () => {
    const h = await start();
    const { stack, a, b } = h;
    const miners = [a, b];
    const victim = await owner(miners);
    const survivor = victim === a ? b : a;

    const header = await stack.session('anvil');
    const ok = await sendRelays(stack, header, 4);
    expect(ok).toBe(4);
    await consumed(h, header, ok);

    await driveTo(stack, miners, 12);
    const claim = await checkClaimed(h, header, ok, [10, 14]);

    // SIGKILL as Redis sees it: connections dropped, no lease released.
    const aborting = victim.abort();
    const takeoverMs = await waitFor(
      () => survivor.owned().includes(SUPPLIER.address),
      5_000,
      'the survivor to take the supplier over',
    );
    await aborting;
    process.stdout.write(`miner failover: supplier taken over ${takeoverMs} ms after the kill\n`);
    expect(takeoverMs).toBeLessThanOrEqual(5_000);

    await driveTo(stack, [survivor], 16);
    const proof = await checkProved(h, header, ok, [14, 18]);
    expect(await txAttempts(survivor)).toEqual({ 'proof:accepted': 1 });
    await driveTo(stack, [survivor], 18);
    const settled = await settledAt(stack, 18, header.sessionId);
    expect(settled).toBeGreaterThan(0n);
    expect(await h.ledger.get(SUPPLIER.address, header.sessionId)).toEqual({
      relays: { mined: 4n, claimed: 4n, proven: 4n },
      upokt: {
        settled_upokt: settled,
        fee_estimated_upokt: 2n,
        fee_actual_upokt: feeOf(stack, claim) + feeOf(stack, proof),
      },
    });
  }, 90_000);

  it('a replica killed mid-session: the survivor resumes the trie and claims every relay served', async () => {
    const h = await start();
    const { stack, a, b } = h;
    const miners = [a, b];
    const victim = await owner(miners);
    const survivor = victim === a ? b : a;

    const header = await stack.session('anvil');
    const before = await sendRelays(stack, header, 3);
    expect(before).toBe(3);
    await consumed(h, header, before);

    const takeover = waitFor(
      () => survivor.owned().includes(SUPPLIER.address),
      5_000,
      'the survivor to take the supplier over',
    );
    await victim.abort();
    // Served while no replica holds the supplier: they wait in the stream.
    const during = await sendRelays(stack, header, 2);
    const takeoverMs = await takeover;
    process.stdout.write(`miner failover mid-session: supplier taken over ${takeoverMs} ms after the kill\n`);
    const after = await sendRelays(stack, header, 2);
    expect([during, after]).toEqual([2, 2]);
    await consumed(h, header, before + during + after);

    await driveTo(stack, [survivor], 12);
    const claim = await checkClaimed(h, header, before + during + after, [10, 14]);
    await driveTo(stack, [survivor], 16);
    const proof = await checkProved(h, header, before + during + after, [14, 18]);
    expect(await txAttempts(survivor)).toEqual({ 'claim:accepted': 1, 'proof:accepted': 1 });
    expect(await h.ledger.get(SUPPLIER.address, header.sessionId)).toEqual({
      relays: { mined: 7n, claimed: 7n, proven: 7n },
      upokt: { fee_estimated_upokt: 2n, fee_actual_upokt: feeOf(stack, claim) + feeOf(stack, proof) },
    });
  }, 90_000);

  it('`miner --config` in its own process: consumes relays, hands the supplier over on SIGTERM and exits 0', async () => {
    const h = await startStack();
    const { stack } = h;
    const dir = mkdtempSync(join(tmpdir(), 'miner-proc-'));
    cleanups.push(() => Promise.resolve(rmSync(dir, { recursive: true, force: true })));
    const keysDir = join(dir, 'keys');
    mkdirSync(keysDir);
    writeFileSync(
      join(keysDir, 'supplier-1.yaml'),
      `operator_address: ${SUPPLIER.address}\nprivate_key_hex: ${bytesToHex(SUPPLIER.privateKey)}\n`,
      { mode: 0o600 },
    );
    const port = await freePort();
    const input = minerConfigInput(stack, '');
    input.keys = { keys_dir: keysDir };
    input.metrics = { enabled: true, addr: `127.0.0.1:${port}` };
    input.logging = { level: 'info' };
    const cfgPath = join(dir, 'miner.yaml');
    writeFileSync(cfgPath, JSON.stringify(input));
    const root = join(import.meta.dirname, '..', '..');
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(root, 'cmd', 'main.ts'), 'miner', '--config', cfgPath],
      {
        cwd: root,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    cleanups.push(() => Promise.resolve(child.exitCode === null && child.kill('SIGKILL')));
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
    const lease = stack.keys.minerClaim(SUPPLIER.address);

    await waitFor(() => stderr.includes('"miner started"'), 20_000, 'the miner process to start');
    const ready = await fetch(`http://127.0.0.1:${port}/ready`);
    expect({ status: ready.status, body: await ready.text() }).toEqual({ status: 200, body: 'READY' });
    const holder = await stack.redis.get(lease);
    expect(holder).not.toBeNull();

    const header = await stack.session('anvil');
    const ok = await sendRelays(stack, header, 3);
    expect(ok).toBe(3);
    await waitFor(
      async () => (await h.store.get(SUPPLIER.address, header.sessionId))?.relay_count === ok,
      5_000,
      'the process to consume the relays',
    );

    // A second replica waits; SIGTERM hands it the supplier well before the lease would expire.
    const b = await replica(stack, 'miner-b');
    expect(b.owned()).toEqual([]);
    child.kill('SIGTERM');
    const stoppedAt = Date.now();
    expect(await exited).toBe(0);
    const handoverMs = await waitFor(() => b.owned().includes(SUPPLIER.address), 5_000, 'the handover');
    process.stdout.write(
      `miner graceful handover: ${Date.now() - stoppedAt} ms after SIGTERM (${handoverMs} ms after exit)\n`,
    );
    expect(await stack.redis.get(lease)).toBe('miner-b');
    expect(stderr).toContain('"miner stopped"');
    expect(stderr).not.toContain(bytesToHex(SUPPLIER.privateKey));
    for (const l of stderr.trim().split('\n')) expect(() => JSON.parse(l) as unknown).not.toThrow();

    await driveTo(stack, [b], 12);
    await checkClaimed(h, header, ok, [10, 14]);
    await driveTo(stack, [b], 16);
    await checkProved(h, header, ok, [14, 18]);
  }, 90_000);
});
