/**
 * Ring signature verification: noble vs native libsecp256k1 on one thread, then each through the
 * worker-thread verify pool. Ratios: native ÷ noble (same ring size, same mode) and pool ÷ single
 * thread (same backend, same ring size).
 *
 * Env: RINGS_BENCH_MS (per measurement, default 2000), RINGS_BENCH_THREADS (pool threads,
 * default 2), RINGS_BENCH_BATCH (verifications per pool task, default 16), RINGS_BENCH_INFLIGHT
 * (outstanding verifications kept in the pool, default threads × batch × 4).
 */
import { bytesToBigInt } from '../../core/index.js';
import { sha256 } from '../../protocol/hash.js';
import {
  DEFAULT_RING_VERIFY_POOL_CONFIG,
  RingVerifyPool,
  nobleBackend,
  prepareRing,
  selectBackend,
  signRingSignature,
  verifyRingSignature,
  type EcBackend,
} from '../../rings/index.js';
import { envNumber, measureOpsPerSecond, type BenchReporter } from '../report.js';

const BENCH = 'rings';
/** The hot-path goal: two-member rings through the pool on the native backend. */
const TARGET_NATIVE_POOL_2_MEMBERS = 1_500;

interface Fixture {
  size: number;
  ring: Uint8Array[];
  sigs: Uint8Array[];
  messages: Uint8Array[];
}

function fixture(size: number, count: number, signer: EcBackend): Fixture {
  const text = (s: string): Uint8Array => new TextEncoder().encode(s);
  const privs = Array.from({ length: size }, (_, i) => sha256(text(`bench ring key ${i}`)));
  const ring = privs.map((k) => signer.encodePoint(signer.mulBase(bytesToBigInt(k))));
  const messages: Uint8Array[] = [];
  const sigs: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const m = sha256(text(`bench message ${size}/${i}`));
    messages.push(m);
    sigs.push(signRingSignature(signer, ring, i % size, privs[i % size]!, m));
  }
  return { size, ring, sigs, messages };
}

async function singleThread(backend: EcBackend, f: Fixture, durationMs: number): Promise<number> {
  const ring = prepareRing(backend, f.ring);
  let i = 0;
  const r = await measureOpsPerSecond(
    () => {
      const k = i++ % f.sigs.length;
      const res = verifyRingSignature(backend, f.sigs[k]!, f.messages[k]!, ring);
      if (!res.ok) throw new Error(`bench signature rejected: ${res.code}`);
    },
    { durationMs },
  );
  return r.opsPerSecond;
}

async function throughPool(
  backend: 'noble' | 'native',
  f: Fixture,
  durationMs: number,
  threads: number,
  batch: number,
  inflight: number,
): Promise<number> {
  const pool = new RingVerifyPool({
    ...DEFAULT_RING_VERIFY_POOL_CONFIG,
    threads,
    max_batch: batch,
    backend,
    task_timeout_ms: 0,
  });
  try {
    if ((await pool.backendInUse()) !== backend) throw new Error(`pool workers did not load ${backend}`);
    let next = 0;
    let done = 0;
    let counting = false;
    let stop = false;
    const one = async (): Promise<void> => {
      while (!stop) {
        const k = next++ % f.sigs.length;
        const res = await pool.verify(f.sigs[k]!, f.messages[k]!, f.ring);
        if (!res.ok) throw new Error(`bench signature rejected in the pool: ${res.code}`);
        if (counting) done++;
      }
    };
    const runners = Array.from({ length: inflight }, () => one());
    await new Promise((r) => setTimeout(r, Math.min(1_000, durationMs / 4))); // warm-up
    counting = true;
    const start = performance.now();
    await new Promise((r) => setTimeout(r, durationMs));
    const elapsed = performance.now() - start;
    const measured = done;
    stop = true;
    await Promise.all(runners);
    return (measured * 1000) / elapsed;
  } finally {
    await pool.close();
  }
}

export default async function verifyBench(reporter: BenchReporter): Promise<void> {
  const durationMs = envNumber('RINGS_BENCH_MS', 2_000);
  const threads = envNumber('RINGS_BENCH_THREADS', 2);
  const batch = envNumber('RINGS_BENCH_BATCH', 16);
  const inflight = envNumber('RINGS_BENCH_INFLIGHT', threads * batch * 4);
  const native = selectBackend('native');
  const backends: EcBackend[] = [nobleBackend, native];
  const fixtures = [2, 4].map((size) => fixture(size, 64, native));

  const single = new Map<string, number>();
  for (const f of fixtures) {
    for (const b of backends) {
      const ops = await singleThread(b, f, durationMs);
      single.set(`${b.name}/${f.size}`, ops);
      const noble = single.get(`noble/${f.size}`)!;
      reporter.emit({
        bench: BENCH,
        name: `verify_${b.name}_${f.size}_members_single`,
        ...(b.name === 'native'
          ? { ratio: ops / noble, baseline: `verify_noble_${f.size}_members_single` }
          : {}),
        ops_per_second: ops,
        threads: 1,
        ring_members: f.size,
        backend: b.name,
      });
    }
  }

  const pooled = new Map<string, number>();
  for (const f of fixtures) {
    for (const b of backends) {
      const name = b.name;
      const ops = await throughPool(name, f, durationMs, threads, batch, inflight);
      pooled.set(`${name}/${f.size}`, ops);
      const base = single.get(`${name}/${f.size}`)!;
      reporter.emit({
        bench: BENCH,
        name: `verify_${name}_${f.size}_members_pool`,
        ratio: ops / base,
        baseline: `verify_${name}_${f.size}_members_single`,
        ops_per_second: ops,
        ...(name === 'native' ? { native_over_noble: ops / pooled.get(`noble/${f.size}`)! } : {}),
        ...(f.size === 2 && name === 'native'
          ? {
              target_ops_per_second: TARGET_NATIVE_POOL_2_MEMBERS,
              meets_target: ops >= TARGET_NATIVE_POOL_2_MEMBERS,
            }
          : {}),
        threads,
        max_batch: batch,
        inflight,
        ring_members: f.size,
        backend: name,
      });
    }
  }
}
