/**
 * Hostile input at volume: every fuzz target of test/fuzz/targets.ts (relay request decode and
 * pre-admission, ring signatures on both EC backends, WebSocket frames, streamed answers, config
 * files, genesis files) runs its share of at least 100,000 generated cases against an in-process
 * relayer (localnet chain, demo backends, real Redis under a private prefix). One JSON line per
 * target (cases, crashes, hangs, seed, cases/s, verdict counts) and one for the whole run; one
 * `fuzz-<target>` reliability record per target. A crash or a hang prints the seed, the fast-check
 * replay path and the counterexample, and makes the bench exit non-zero.
 *
 * Ratio: cases/s of the target ÷ cases/s of the fastest target in the same run (the baseline).
 *
 * The yaml parser prints a process warning for some odd documents (ambiguous aliases, collection
 * keys); those lines on stderr are expected.
 *
 * Env: FUZZ_SEED (default 20261123), FUZZ_CASES_SCALE (multiplies every target's share, default 1;
 * below 1 only for a quick look — the acceptance run is the default).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startRelayerStack } from '../../test/e2e/relayer-fixtures.js';
import {
  configTarget,
  describeFailure,
  fuzzRecord,
  genesisTarget,
  relayRequestTarget,
  ringSignatureTarget,
  runFuzzTarget,
  streamBatchesTarget,
  websocketFrameTarget,
  type FuzzRunReport,
  type FuzzTarget,
} from '../../test/fuzz/targets.js';
import { recordReliability } from '../../test/helpers/reliability.js';
import type { BenchReporter } from '../report.js';

const BENCH = 'fuzz';
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Cases per target at scale 1: 100,000 in all, none under 10,000. */
const SHARE: Record<string, number> = {
  'relay-request': 30_000,
  'ring-signature': 10_000,
  'websocket-frame': 20_000,
  'stream-batches': 20_000,
  config: 10_000,
  genesis: 10_000,
};

function scaleFromEnv(): number {
  const raw = process.env['FUZZ_CASES_SCALE'];
  if (raw === undefined || raw === '') return 1;
  const v = Number(raw);
  if (!Number.isFinite(v) || v <= 0)
    throw new Error(`FUZZ_CASES_SCALE must be a positive number, got "${raw}"`);
  return v;
}

function seedFromEnv(): number {
  const raw = process.env['FUZZ_SEED'];
  if (raw === undefined || raw === '') return 20_261_123;
  const v = Number(raw);
  if (!Number.isInteger(v)) throw new Error(`FUZZ_SEED must be an integer, got "${raw}"`);
  return v;
}

export default async function fuzzBench(reporter: BenchReporter): Promise<void> {
  const seed = seedFromEnv();
  const scale = scaleFromEnv();
  const dir = mkdtempSync(join(tmpdir(), 'fuzz-bench-'));
  const stack = await startRelayerStack();
  const reports: FuzzRunReport[] = [];
  try {
    const header = await stack.session('anvil');
    const examples = {
      relayer: readFileSync(join(root, 'config.relayer.example.yaml'), 'utf8'),
      miner: readFileSync(join(root, 'config.miner.example.yaml'), 'utf8'),
    };
    const targets: FuzzTarget<never>[] = [
      relayRequestTarget(stack.relayer.core, header),
      ringSignatureTarget(),
      websocketFrameTarget(stack.relayer.core, header),
      streamBatchesTarget(header),
      configTarget(examples),
      genesisTarget(readFileSync(join(root, 'localnet', 'genesis.sample.yaml'), 'utf8'), dir),
    ] as FuzzTarget<never>[];
    for (const target of targets) {
      const numRuns = Math.max(1, Math.round(SHARE[target.name]! * scale));
      // Names the run even if the process itself dies (a fatal V8 abort cannot be caught).
      process.stderr.write(`fuzz: ${target.name}, seed ${seed}, ${numRuns} cases\n`);
      const report = await runFuzzTarget(target, { seed, numRuns });
      reports.push(report);
      recordReliability('fuzz', target.name, fuzzRecord(report));
      if (report.failure !== undefined) {
        process.stderr.write(`fuzz FAILURE ${describeFailure(report)}\n`);
      }
    }
  } finally {
    await stack.close();
    rmSync(dir, { recursive: true, force: true });
  }

  const fastest = Math.max(...reports.map((r) => r.cases_per_second));
  for (const r of reports) {
    reporter.emit({
      bench: BENCH,
      name: `fuzz_${r.target.replace(/-/g, '_')}`,
      ratio: r.cases_per_second / fastest,
      baseline: 'fastest target of this run',
      cases: r.cases,
      crashes: r.crashes,
      hangs: r.hangs,
      seed: r.seed,
      cases_per_second: r.cases_per_second,
      duration_s: r.duration_s,
      verdicts: r.verdicts,
      ...(r.failure !== undefined
        ? {
            failure_kind: r.failure.kind,
            failure_path: r.failure.path,
            counterexample: r.failure.counterexample,
          }
        : {}),
    });
  }
  const cases = reports.reduce((a, r) => a + r.cases, 0);
  const seconds = reports.reduce((a, r) => a + r.duration_s, 0);
  const crashes = reports.reduce((a, r) => a + r.crashes, 0);
  const hangs = reports.reduce((a, r) => a + r.hangs, 0);
  reporter.emit({
    bench: BENCH,
    name: 'fuzz_total',
    cases,
    crashes,
    hangs,
    seed,
    targets: reports.length,
    cases_per_second: cases / seconds,
    duration_s: seconds,
  });
  if (crashes > 0 || hangs > 0) {
    throw new Error(
      `fuzz: ${crashes} crash(es), ${hangs} hang(s); seed ${seed} (see the FAILURE line above)`,
    );
  }
}
