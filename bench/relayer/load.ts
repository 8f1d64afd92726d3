/**
 * Load generators of the relayer bench, both on an undici Pool with keep-alive connections:
 *
 * - closed loop: `concurrency` workers each send the next request as soon as the previous answer
 *   is read; gives the throughput ceiling and its latency at that concurrency.
 * - open loop: requests scheduled at a fixed rate; latency is measured from each request's
 *   scheduled send time, so a stalled server (or a late load client) shows up in the percentiles
 *   instead of silently lowering the send rate (no coordinated omission).
 *
 * A request counts as an error when it throws or answers anything but 200.
 */
import { Pool } from 'undici';

export interface LoadTarget {
  /** http://127.0.0.1:port */
  origin: string;
  /** Bodies cycled through in order. */
  bodies: readonly Uint8Array[];
  headers: Record<string, string>;
}

export interface LatencySummary {
  /** 200 answers completed in each second of the measured window (shows stalls and backlog). */
  ok_per_second: number[];
  requests: number;
  errors: number;
  /** Status code → count, for answers other than 200 (and `error` for thrown requests). */
  error_kinds: Record<string, number>;
  p50_ms: number;
  p90_ms: number;
  p99_ms: number;
  max_ms: number;
  mean_ms: number;
}

export interface ClosedLoopResult extends LatencySummary {
  /** Every request sent, warm-up included. */
  sent: number;
  rps: number;
  concurrency: number;
  duration_s: number;
}

export interface OpenLoopResult extends LatencySummary {
  /** Every request sent, warm-up included. */
  sent: number;
  target_rps: number;
  /** 200 answers that arrived inside the measured window, per second (below target = backlog). */
  achieved_rps: number;
  duration_s: number;
  /** Requests whose answer had not arrived when the run ended (counted as errors too). */
  unfinished: number;
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

class Recorder {
  private samples = new Float64Array(1 << 16);
  private readonly perSecond: number[];

  constructor(
    private readonly windowStart: number,
    seconds: number,
  ) {
    this.perSecond = new Array<number>(Math.ceil(seconds)).fill(0);
  }

  /** Counts a 200 answer completed at `at` (performance.now()) in its second of the window. */
  tick(at: number): void {
    const k = Math.floor((at - this.windowStart) / 1000);
    if (k >= 0 && k < this.perSecond.length) this.perSecond[k]!++;
  }

  private n = 0;
  errors = 0;
  readonly kinds: Record<string, number> = {};

  add(ms: number): void {
    if (this.n === this.samples.length) {
      const bigger = new Float64Array(this.samples.length * 2);
      bigger.set(this.samples);
      this.samples = bigger;
    }
    this.samples[this.n++] = ms;
  }

  fail(kind: string): void {
    this.errors++;
    this.kinds[kind] = (this.kinds[kind] ?? 0) + 1;
  }

  get count(): number {
    return this.n;
  }

  summary(): LatencySummary {
    const s = this.samples.slice(0, this.n).sort();
    let sum = 0;
    for (const v of s) sum += v;
    return {
      ok_per_second: [...this.perSecond],
      requests: this.n + this.errors,
      errors: this.errors,
      error_kinds: { ...this.kinds },
      p50_ms: percentile(s, 50),
      p90_ms: percentile(s, 90),
      p99_ms: percentile(s, 99),
      max_ms: s.length > 0 ? s[s.length - 1]! : Number.NaN,
      mean_ms: s.length > 0 ? sum / s.length : Number.NaN,
    };
  }
}

/** Sends one request and reads the whole answer; returns the status or `error`. */
async function send(pool: Pool, t: LoadTarget, body: Uint8Array): Promise<string> {
  try {
    const r = await pool.request({ path: '/', method: 'POST', headers: t.headers, body });
    await r.body.arrayBuffer();
    return r.statusCode === 200 ? 'ok' : String(r.statusCode);
  } catch (err) {
    return `error:${(err as { code?: string }).code ?? 'unknown'}`;
  }
}

export async function closedLoop(
  t: LoadTarget,
  o: { concurrency: number; warmupMs: number; durationMs: number },
): Promise<ClosedLoopResult> {
  const pool = new Pool(t.origin, { connections: o.concurrency, pipelining: 1, keepAliveTimeout: 60_000 });
  let next = 0;
  const startAt = performance.now() + o.warmupMs;
  const endAt = startAt + o.durationMs;
  const rec = new Recorder(startAt, o.durationMs / 1000);
  const worker = async (): Promise<void> => {
    for (;;) {
      const t0 = performance.now();
      if (t0 >= endAt) return;
      const outcome = await send(pool, t, t.bodies[next++ % t.bodies.length]!);
      if (t0 < startAt) continue;
      const t1 = performance.now();
      if (outcome === 'ok') rec.tick(t1);
      if (outcome === 'ok') rec.add(t1 - t0);
      else rec.fail(outcome);
    }
  };
  try {
    await Promise.all(Array.from({ length: o.concurrency }, () => worker()));
    const elapsed = Math.max(performance.now(), endAt) - startAt;
    const s = rec.summary();
    return {
      rps: (rec.count * 1000) / elapsed,
      sent: next,
      concurrency: o.concurrency,
      duration_s: elapsed / 1000,
      ...s,
    };
  } finally {
    await pool.close();
  }
}

export async function openLoop(
  t: LoadTarget,
  o: { rps: number; warmupMs: number; durationMs: number; connections: number; drainMs?: number },
): Promise<OpenLoopResult> {
  const pool = new Pool(t.origin, { connections: o.connections, pipelining: 1, keepAliveTimeout: 60_000 });
  const intervalMs = 1000 / o.rps;
  const t0 = performance.now();
  const measureFrom = t0 + o.warmupMs;
  const endAt = measureFrom + o.durationMs;
  const rec = new Recorder(measureFrom, o.durationMs / 1000);
  const inFlight = new Set<Promise<void>>();
  let i = 0;
  let measured = 0;
  let doneInWindow = 0;
  let finished = false;
  try {
    for (;;) {
      const now = performance.now();
      // Send everything whose scheduled time has come (a late timer sends a burst, and the
      // lateness is part of each of those requests' latency).
      for (;;) {
        const scheduled = t0 + i * intervalMs;
        if (scheduled > now || scheduled >= endAt) break;
        const counted = scheduled >= measureFrom;
        if (counted) measured++;
        const p = send(pool, t, t.bodies[i % t.bodies.length]!).then((outcome) => {
          inFlight.delete(p);
          if (finished) return;
          const doneAt = performance.now();
          if (outcome === 'ok' && doneAt >= measureFrom && doneAt < endAt) doneInWindow++;
          if (outcome === 'ok') rec.tick(doneAt);
          if (!counted) return;
          if (outcome === 'ok') rec.add(doneAt - scheduled);
          else rec.fail(outcome);
        });
        inFlight.add(p);
        i++;
      }
      if (t0 + i * intervalMs >= endAt) break;
      await new Promise((r) =>
        setTimeout(r, Math.max(0, Math.min(1, t0 + i * intervalMs - performance.now()))),
      );
    }
    const drainUntil = performance.now() + (o.drainMs ?? 5_000);
    while (inFlight.size > 0 && performance.now() < drainUntil) {
      await Promise.race([...inFlight, new Promise((r) => setTimeout(r, 50))]);
    }
    finished = true;
    const unfinished = measured - rec.count - rec.errors;
    for (let k = 0; k < unfinished; k++) rec.fail('unfinished');
    const s = rec.summary();
    return {
      target_rps: o.rps,
      sent: i,
      achieved_rps: (doneInWindow * 1000) / o.durationMs,
      duration_s: o.durationMs / 1000,
      unfinished,
      ...s,
    };
  } finally {
    await pool.destroy();
  }
}
