/**
 * The worker-thread verify pool: same answers as the in-thread verifier, batching, and a typed result
 * (not a hang, not a throw) when a worker dies or a batch misses its deadline.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bytesToBigInt, concatBytes } from '../core/bytes.js';
import { InvalidInputError } from '../core/errors.js';
import { sha256 } from '../protocol/hash.js';
import { signRingSignature, verifyRingSignature } from './blsag.js';
import { selectBackend } from './select-backend.js';
import { decodeVerifyBatch, encodeVerifyBatch, splitRingBytes, type VerifyItem } from './verify-batch.js';
import { DEFAULT_RING_VERIFY_POOL_CONFIG, RingVerifyPool } from './verify-pool.js';

const native = selectBackend('native');
const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const privs = [0, 1, 2, 3].map((i) => sha256(text(`rings pool test key ${i}`)));
const pubs = privs.map((k) => native.encodePoint(native.mulBase(bytesToBigInt(k))));

/** A mix of valid and invalid items over 2- and 4-member rings. */
function items(count: number): VerifyItem[] {
  const out: VerifyItem[] = [];
  for (let i = 0; i < count; i++) {
    const n = i % 3 === 0 ? 4 : 2;
    const ring = pubs.slice(0, n);
    const message32 = sha256(text(`message ${i}`));
    let signature = signRingSignature(native, ring, i % n, privs[i % n]!, message32);
    if (i % 5 === 1) signature = signature.subarray(0, signature.length - 1); // malformed
    if (i % 5 === 2) signature = signRingSignature(native, ring, 0, privs[0]!, sha256(message32)); // wrong message
    if (i % 5 === 3) signature = concatBytes(signature, Uint8Array.of(1, 2, 3)); // trailing bytes: valid
    out.push({ signature, message32, ringPublicKeys: i % 7 === 4 ? pubs.slice(2, 4) : ring });
  }
  return out;
}

describe('verify batch codec', () => {
  it('round-trips items and drops ring keys that are not 33 bytes', () => {
    const its = items(5);
    its[0] = { ...its[0]!, ringPublicKeys: [...its[0]!.ringPublicKeys, new Uint8Array(65)] };
    const decoded = decodeVerifyBatch(encodeVerifyBatch(its));
    expect(
      decoded.map((d) => ({
        signature: Array.from(d.signature),
        message32: Array.from(d.message32),
        ring: splitRingBytes(d.ringBytes, d.ringSize).map((k) => Array.from(k)),
      })),
    ).toEqual(
      its.map((it) => ({
        signature: Array.from(it.signature),
        message32: Array.from(it.message32),
        ring: it.ringPublicKeys.filter((k) => k.length === 33).map((k) => Array.from(k)),
      })),
    );
  });

  it('throws on a buffer it did not produce', () => {
    const buf = encodeVerifyBatch(items(2));
    expect(() => decodeVerifyBatch(buf.subarray(0, buf.length - 1))).toThrow(InvalidInputError);
    expect(() => decodeVerifyBatch(concatBytes(buf, Uint8Array.of(0)))).toThrow(InvalidInputError);
    expect(() => decodeVerifyBatch(new Uint8Array(3))).toThrow(InvalidInputError);
  });
});

describe('RingVerifyPool', () => {
  let pool: RingVerifyPool;
  beforeAll(() => {
    pool = new RingVerifyPool({
      ...DEFAULT_RING_VERIFY_POOL_CONFIG,
      threads: 2,
      max_batch: 4,
      backend: 'native',
    });
  });
  afterAll(async () => {
    await pool.close();
  });

  it('gives the same result values as the in-thread verifier, in order, across batches', async () => {
    const its = items(30);
    const expected = its.map((it) =>
      verifyRingSignature(native, it.signature, it.message32, it.ringPublicKeys),
    );
    expect(new Set(expected.map((r) => (r.ok ? 'ok' : r.code)))).toEqual(
      new Set(['ok', 'RING_SIG_MALFORMED', 'RING_SIG_INVALID', 'RING_SIG_NOT_MEMBER']),
    );
    expect(await pool.verifyMany(its)).toEqual(expected);
    // Single calls made one by one (each its own batch) agree too.
    for (const [i, it] of its.slice(0, 5).entries()) {
      expect(await pool.verify(it.signature, it.message32, it.ringPublicKeys)).toEqual(expected[i]);
    }
  });

  it('reports the backend its workers use', async () => {
    expect(await pool.backendInUse()).toBe('native');
  });

  it('rejects a message that is not 32 bytes with InvalidInputError', async () => {
    const it0 = items(1)[0]!;
    await expect(pool.verify(it0.signature, it0.message32.subarray(1), it0.ringPublicKeys)).rejects.toThrow(
      InvalidInputError,
    );
  });

  it('refuses bad configuration', () => {
    expect(() => new RingVerifyPool({ ...DEFAULT_RING_VERIFY_POOL_CONFIG, threads: 0 })).toThrow(
      InvalidInputError,
    );
    expect(() => new RingVerifyPool({ ...DEFAULT_RING_VERIFY_POOL_CONFIG, max_batch: 1.5 })).toThrow(
      InvalidInputError,
    );
    expect(
      () =>
        new RingVerifyPool({ ...DEFAULT_RING_VERIFY_POOL_CONFIG, backend: 'elliptic' as unknown as 'auto' }),
    ).toThrow(InvalidInputError);
  });
});

describe('RingVerifyPool when workers fail', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'rings-pool-'));
    writeFileSync(join(dir, 'crash-worker.mjs'), 'export default function () { process.exit(7); }\n');
    writeFileSync(
      join(dir, 'hang-worker.mjs'),
      'export default function () { return new Promise(() => {}); }\n',
    );
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  const unavailable = {
    ok: false,
    code: 'RING_VERIFY_UNAVAILABLE',
    reason: expect.stringMatching(/\S/) as unknown,
  };

  it('a worker that exits mid-task gives RING_VERIFY_UNAVAILABLE for its whole batch', async () => {
    const pool = new RingVerifyPool(
      { ...DEFAULT_RING_VERIFY_POOL_CONFIG, threads: 1, max_batch: 3, backend: 'noble' },
      { workerUrl: pathToFileURL(join(dir, 'crash-worker.mjs')) },
    );
    try {
      const results = await pool.verifyMany(items(5));
      expect(results).toEqual(Array.from({ length: 5 }, () => unavailable));
      expect(String((results[0] as { reason: string }).reason)).toMatch(/exited with code/);
    } finally {
      await pool.close();
    }
  });

  it('a batch that misses its deadline gives RING_VERIFY_UNAVAILABLE', async () => {
    const pool = new RingVerifyPool(
      {
        ...DEFAULT_RING_VERIFY_POOL_CONFIG,
        threads: 1,
        max_batch: 2,
        task_timeout_ms: 200,
        backend: 'noble',
      },
      { workerUrl: pathToFileURL(join(dir, 'hang-worker.mjs')) },
    );
    try {
      const it0 = items(1)[0]!;
      const result = await pool.verify(it0.signature, it0.message32, it0.ringPublicKeys);
      expect(result).toEqual(unavailable);
      expect(String((result as { reason: string }).reason)).toMatch(/deadline/);
    } finally {
      await pool.close();
    }
  });

  it('a thread that died or missed a deadline is replaced: later batches are verified', async () => {
    // Crashes on its first task (marker file absent), hangs on its second, then verifies.
    const marker = join(dir, 'flaky-state');
    const real = pathToFileURL(join(import.meta.dirname, 'verify-worker.ts')).href;
    writeFileSync(
      join(dir, 'flaky-worker.mjs'),
      [
        "import { existsSync, readFileSync, writeFileSync } from 'node:fs';",
        `const marker = ${JSON.stringify(marker)};`,
        `const real = await import(${JSON.stringify(real)});`,
        'export default function (task) {',
        "  if (task.kind !== 'verify') return real.default(task);",
        "  const seen = existsSync(marker) ? Number(readFileSync(marker, 'utf8')) : 0;",
        '  writeFileSync(marker, String(seen + 1));',
        '  if (seen === 0) process.exit(9);',
        '  if (seen === 1) return new Promise(() => {});',
        '  return real.default(task);',
        '}',
      ].join('\n'),
    );
    const pool = new RingVerifyPool(
      {
        ...DEFAULT_RING_VERIFY_POOL_CONFIG,
        threads: 1,
        max_batch: 4,
        task_timeout_ms: 3_000,
        backend: 'native',
      },
      { workerUrl: pathToFileURL(join(dir, 'flaky-worker.mjs')) },
    );
    try {
      const batch = items(4);
      const crashed = await pool.verifyMany(batch);
      expect(crashed).toEqual(Array.from({ length: 4 }, () => unavailable));
      expect(String((crashed[0] as { reason: string }).reason)).toMatch(/exited with code 9/);
      // The replacement thread starts after a pause (it died young); then it hangs once.
      await new Promise((res) => setTimeout(res, 1_200));
      const hung = await pool.verifyMany(batch);
      expect(String((hung[0] as { reason: string }).reason)).toMatch(/deadline/);
      await new Promise((res) => setTimeout(res, 300));
      const expected = batch.map((it) =>
        verifyRingSignature(native, it.signature, it.message32, it.ringPublicKeys),
      );
      expect(await pool.verifyMany(batch)).toEqual(expected);
      expect(pool.queuedBatches).toBe(0);
    } finally {
      await pool.close();
    }
  });

  it('a closed pool answers RING_VERIFY_UNAVAILABLE', async () => {
    const pool = new RingVerifyPool({ ...DEFAULT_RING_VERIFY_POOL_CONFIG, threads: 1, backend: 'noble' });
    await pool.close();
    const it0 = items(1)[0]!;
    expect(await pool.verify(it0.signature, it0.message32, it0.ringPublicKeys)).toEqual(unavailable);
  });
});
