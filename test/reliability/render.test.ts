import { describe, expect, it } from 'vitest';
import { renderReliability, type StoredRecord, type VitestJson } from './render.js';

const at = '2026-11-23T10:00:00.000Z';
const records: StoredRecord[] = [
  {
    kind: 'fault',
    name: 'relayer-sigkill',
    recorded_at: at,
    scenario: 'relayer 1 of 2 SIGKILLed under load',
    load_rps: 150,
    duration_s: 6,
    client_successes: 812,
    client_failures: 31,
    claimed_on_chain: 812,
    relays_lost: 0,
    expired_claims: 0,
    missed_proofs: 0,
    recovery_ms: 1200,
  },
  {
    kind: 'fault',
    name: 'miner-sigkill',
    recorded_at: at,
    scenario: 'miner owner SIGKILLed mid-session',
    load_rps: 100,
    duration_s: 8,
    client_successes: 700,
    client_failures: 0,
    claimed_on_chain: 699,
    relays_lost: 1,
    expired_claims: 0,
    missed_proofs: 0,
    extra: { takeover_ms: 4210, restarts: 1 },
  },
  {
    kind: 'fuzz',
    name: 'relay-request',
    recorded_at: at,
    target: 'relay-request',
    cases: 60000,
    crashes: 0,
    hangs: 0,
    seed: 7,
    duration_s: 4.5,
  },
  {
    kind: 'fuzz',
    name: 'config',
    recorded_at: at,
    target: 'config',
    cases: 40000,
    crashes: 0,
    hangs: 1,
    seed: 8,
    duration_s: 9,
  },
  {
    kind: 'soak',
    name: 'steady',
    recorded_at: at,
    duration_s: 60,
    rps: 200,
    passed: true,
    rss_mib: { relayer: 120 },
  },
];
const vitest: VitestJson = {
  numPassedTests: 2,
  numFailedTests: 1,
  testResults: [
    {
      name: '/repo/test/fault/relayer-kill.fault.test.ts',
      assertionResults: [
        { fullName: 'relayer SIGKILL claims exactly', status: 'passed', duration: 12345.6 },
        { fullName: 'relayer SIGTERM | drains', status: 'failed', duration: null },
      ],
    },
  ],
};

describe('renderReliability', () => {
  const page = renderReliability(records, vitest, {
    generatedAt: '2026-11-23T10:05:00Z',
    commit: 'abc1234',
    machine: 'AMD EPYC, 2 cores',
    steps: [
      ['fault, hostile-input and fuzz tests', false],
      ['fuzz bench', true],
    ],
    root: '/repo',
  });
  const lines = page.split('\n');

  it('summarises the ledger, takeover, fuzz and steps from the records', () => {
    expect(lines).toContain('| fault scenarios survived | 1 of 2 |');
    expect(lines).toContain('| relays served to clients during faults | 1,512 |');
    expect(lines).toContain('| relays lost (client success − claimed on chain) | 1 |');
    expect(lines).toContain('| takeover after owner SIGKILL (max) | 4,210 ms |');
    expect(lines).toContain('| fuzz cases / crashes / hangs | 100,000 / 0 / 1 |');
    expect(lines).toContain('| soak steady | 60 s at 200 RPS, no growing trend |');
    expect(lines).toContain('| fault, hostile-input and fuzz tests | 2 passed, 1 failed |');
    expect(lines).toContain('| step: fault, hostile-input and fuzz tests | FAILED |');
    expect(lines).toContain('| step: fuzz bench | ok |');
  });

  it('lists every fault scenario and fuzz target, sorted, with all their figures', () => {
    expect(lines).toContain(
      '| miner owner SIGKILLed mid-session | 100 | 8 | 700 | 0 | 699 | 1 | 0 | 0 | – | takeover_ms=4,210, restarts=1 |',
    );
    expect(lines).toContain(
      '| relayer 1 of 2 SIGKILLed under load | 150 | 6 | 812 | 31 | 812 | 0 | 0 | 0 | 1,200 |  |',
    );
    expect(lines.indexOf('| config | 40,000 | 0 | 1 | 8 | 9 |')).toBeLessThan(
      lines.indexOf('| relay-request | 60,000 | 0 | 0 | 7 | 4.5 |'),
    );
    expect(lines).toContain('| steady | duration_s=60, rps=200, passed=true, rss_mib.relayer=120 |');
  });

  it('lists the tests of the run relative to the root, escaping table pipes', () => {
    expect(lines).toContain(
      '| test/fault/relayer-kill.fault.test.ts | relayer SIGKILL claims exactly | passed | 12,346 |',
    );
    expect(lines).toContain(
      '| test/fault/relayer-kill.fault.test.ts | relayer SIGTERM \\| drains | failed | – |',
    );
  });
});
