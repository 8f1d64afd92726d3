/**
 * The one-command stack in short mode, in process: every transport serves relays through both
 * relayers, and every session that served relays is claimed, proved and settled.
 */
import { describe, expect, it } from 'vitest';
import { TRANSPORTS, runStack, runStackDetailed } from './stack.js';

describe('pocket-relay-miner stack --short', () => {
  it('serves every transport, and every claim and required proof lands', async () => {
    const lines: string[] = [];
    const { summary } = await runStackDetailed({ short: true, out: (l) => lines.push(l) });
    expect(summary, lines.join('\n')).toBeDefined();
    const s = summary!;
    expect(s.problems, lines.join('\n')).toEqual([]);
    expect(s.ok).toBe(true);
    for (const t of TRANSPORTS) {
      expect({ t, ok: s.relays[t].succeeded > 0 }).toEqual({ t, ok: true });
    }
    expect(s.sessions).toBeGreaterThan(0);
    expect(s.claims).toEqual({ submitted: s.sessions, accepted: s.sessions });
    expect(s.proofs).toEqual({ required: s.sessions, submitted: s.sessions, accepted: s.sessions });
    const served = TRANSPORTS.reduce((n, t) => n + s.relays[t].succeeded, 0);
    // Every relay served is in a claimed and proven tree, or counted as reaching a sealed session.
    expect(s.ledger['proven']).toBe(s.ledger['mined']);
    expect((s.ledger['mined'] ?? 0) + (s.ledger['dropped'] ?? 0)).toBe(served);
    for (const upokt of Object.values(s.settled_upokt)) expect(BigInt(upokt)).toBeGreaterThan(0n);
    expect(lines.some((l) => l.startsWith('RESULT: OK'))).toBe(true);
  }, 90_000);

  it('exits 1 with a clear message when the run fails (unusable block time)', async () => {
    const lines: string[] = [];
    expect(await runStack({ short: true, blockTimeMs: -1, out: (l) => lines.push(l) })).toBe(1);
    expect(lines.some((l) => l.startsWith('stack: failed:'))).toBe(true);
  }, 30_000);
});
