/**
 * Benchmark output: a header naming the machine, then one JSON line per measurement. Every
 * benchmark reports its ratio against a baseline measured in the same run first, absolute numbers
 * second.
 */
import { cpus, totalmem, platform, arch } from 'node:os';

export interface MachineInfo {
  node: string;
  platform: string;
  cpu: string;
  cores: number;
  memory_gib: number;
}

export function machineInfo(): MachineInfo {
  const list = cpus();
  return {
    node: process.version,
    platform: `${platform()}-${arch()}`,
    cpu: list[0]?.model.trim() ?? 'unknown',
    cores: list.length,
    memory_gib: Math.round((totalmem() / 2 ** 30) * 10) / 10,
  };
}

export interface BenchResult {
  /** Area and measurement, e.g. `rings` / `verify_pool_2_members`. */
  bench: string;
  name: string;
  /** Measured value ÷ baseline value from the same run, when the measurement has a baseline. */
  ratio?: number;
  baseline?: string;
  [metric: string]: unknown;
}

export class BenchReporter {
  readonly results: BenchResult[] = [];

  constructor(private readonly write: (line: string) => void = (l) => process.stdout.write(l + '\n')) {}

  header(extra: Record<string, unknown> = {}): void {
    this.write(JSON.stringify({ type: 'machine', ...machineInfo(), ...extra }));
  }

  emit(result: BenchResult): void {
    const ordered: BenchResult = { bench: result.bench, name: result.name };
    if (result.ratio !== undefined) ordered.ratio = round(result.ratio, 3);
    if (result.baseline !== undefined) ordered.baseline = result.baseline;
    for (const [k, v] of Object.entries(result)) {
      if (!(k in ordered)) ordered[k] = typeof v === 'number' ? round(v, 3) : v;
    }
    this.results.push(ordered);
    this.write(JSON.stringify({ type: 'result', ...ordered }));
  }
}

export function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

/**
 * Runs `op` repeatedly for about `durationMs` after a warm-up and returns operations per second.
 * `op` may perform several operations per call; pass that count as `opsPerCall`.
 */
export async function measureOpsPerSecond(
  op: () => unknown,
  opts: { durationMs: number; warmupMs?: number; opsPerCall?: number },
): Promise<{ opsPerSecond: number; ops: number; elapsedMs: number }> {
  const perCall = opts.opsPerCall ?? 1;
  const warmEnd = performance.now() + (opts.warmupMs ?? Math.min(500, opts.durationMs / 4));
  while (performance.now() < warmEnd) await op();
  let ops = 0;
  const start = performance.now();
  const end = start + opts.durationMs;
  while (performance.now() < end) {
    await op();
    ops += perCall;
  }
  const elapsedMs = performance.now() - start;
  return { opsPerSecond: (ops * 1000) / elapsedMs, ops, elapsedMs };
}

export function envNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const v = Number(raw);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${name} must be a positive number, got "${raw}"`);
  return v;
}
