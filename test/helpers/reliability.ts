/**
 * Reliability records: each fault test, fuzz run and soak run writes what it measured as one JSON
 * file under `reports/reliability/`, and `npm run reliability` renders them into
 * docs/RELIABILITY.md. A record is written only from a real run, never by hand.
 *
 *   recordReliability('fault', 'relayer-sigkill', { scenario: …, client_successes: 812, … });
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export type ReliabilityKind = 'fault' | 'fuzz' | 'soak' | 'hostile';

/** Figures every fault scenario reports; the ledger columns are the acceptance. */
export interface FaultRecord {
  /** One line saying what was done, e.g. "relayer 1 of 2 SIGKILLed at 3 s under 150 RPS". */
  scenario: string;
  /** Offered load during the fault, relays per second. */
  load_rps: number;
  /** Seconds of traffic. */
  duration_s: number;
  /** Relays whose signed response the client verified. */
  client_successes: number;
  /** Relays the client saw fail (refused, reset, 5xx); they must not be claimed. */
  client_failures: number;
  /** Sum of num_relays over the claims on chain for the sessions of the run. */
  claimed_on_chain: number;
  /** client_successes − claimed_on_chain; must be 0. */
  relays_lost: number;
  expired_claims: number;
  missed_proofs: number;
  /** Milliseconds from the fault to the service being whole again, where it applies. */
  recovery_ms?: number;
  /** Anything else measured (takeover_ms, buffered relays, error counts …). */
  extra?: Record<string, number | string | boolean>;
}

export interface FuzzRecord {
  target: string;
  cases: number;
  crashes: number;
  hangs: number;
  seed: number;
  duration_s: number;
}

export function reliabilityDir(): string {
  return join(import.meta.dirname, '..', '..', 'reports', 'reliability');
}

/** Writes `reports/reliability/<kind>-<name>.json` (replacing an older record of the same name). */
export function recordReliability(
  kind: ReliabilityKind,
  name: string,
  data: FaultRecord | FuzzRecord | Record<string, unknown>,
): string {
  if (!/^[a-z0-9][a-z0-9-]*$/.test(name))
    throw new Error(`record name ${JSON.stringify(name)} must be kebab-case`);
  const dir = reliabilityDir();
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${kind}-${name}.json`);
  const record = { kind, name, recorded_at: new Date().toISOString(), ...data };
  writeFileSync(file, `${JSON.stringify(record, null, 2)}\n`);
  return file;
}
