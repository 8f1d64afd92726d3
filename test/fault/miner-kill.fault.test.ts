/**
 * Miner owner SIGKILL (two miner processes, one relayer, leases split one supplier each):
 *
 *   - mid-session: the owner of supplier 1 dies without any shutdown in the second-to-last block of
 *     a session, about 2.5 s into a 150 RPS run;
 *   - between claim and proof: the owner of supplier 2 dies once every claim of its sessions is
 *     on chain and before any of their proofs is.
 *
 * The surviving replica must take the dead owner's lease and consume its relay stream (the
 * pending entries the dead consumer left are reclaimed), then claim and prove exactly what the
 * client saw succeed. takeover_ms = from the SIGKILL until the survivor's instance id is in the
 * lease key and its consumer has read the dead owner's stream since the kill, polled every 25 ms;
 * the acceptance is ≤ 5 s with the default lease timings (4 s TTL, 1 s renew).
 *
 * The claim window of the session the owner dies in opens 2 s after its end, before the lease
 * moves: the survivor takes over a session whose claim is due and whose last relays are still
 * in the stream (the relayer published them while nobody consumed), and must read them before it
 * seals the trie. Windows are 20 blocks (8 s at 400 ms blocks) instead of the stack's 4, so a window
 * is longer than a takeover, as on a real chain where windows last many minutes.
 */
import { describe, expect, it } from 'vitest';
import { recordReliability } from '../helpers/reliability.js';
import { faultRecord, type FaultStack, useFaultStack } from './harness.js';
import {
  SubmissionHeights,
  MinerNames,
  consumerIdleMs,
  instanceIdOf,
  leaseHolder,
  leaseOwners,
  heightReached,
  ledgerVerdict,
  mismatched,
  minerMetric,
  sleep,
  waitUntil,
  wholeLedger,
  windowsFor,
  windowsOf,
} from './miner-harness.js';

const RPS = 150;
const WINDOW_BLOCKS = 20;
/** Claim window opens 2 s after the session's end: before a dead owner's lease expires. */
const CLAIM_OPEN_OFFSET_BLOCKS = 4;
const TAKEOVER_LIMIT_MS = 5_000;
const TRICKLE_RPS = 20;

const names = new MinerNames();
let landed: SubmissionHeights | undefined;

const stack = useFaultStack(
  {
    relayers: 1,
    miners: 2,
    genesis: windowsOf(CLAIM_OPEN_OFFSET_BLOCKS, WINDOW_BLOCKS, WINDOW_BLOCKS),
    minerConfig: names.hook,
  },
  {
    started: (s) => (landed = new SubmissionHeights(s.net)),
    stopping: () => landed?.close(),
  },
);

/** Waits until each miner holds exactly one supplier lease; returns the owner of each supplier. */
async function splitLeases(s: FaultStack, timeoutMs: number): Promise<number[]> {
  let owners: number[] = [];
  await waitUntil(
    'each miner holding one supplier lease',
    async () => {
      owners = (await leaseOwners(s, names)).map((o) => o.owner);
      return owners.length === 2 && new Set(owners).size === 2 && !owners.includes(-1);
    },
    timeoutMs,
    100,
  );
  return owners;
}

/**
 * SIGKILLs miner `victim` and measures until miner `survivor` holds `supplier`'s lease and its
 * consumer has read that supplier's stream after the kill.
 */
async function killAndMeasureTakeover(
  s: FaultStack,
  victim: number,
  survivor: number,
  supplier: string,
): Promise<number> {
  const survivorId = instanceIdOf(s.miners[survivor]!);
  const consumer = `${names.consumerName(survivor)}-${survivorId}`;
  const redis = s.redis.client();
  const keys = names.keys();
  const killedAt = performance.now();
  await s.miners[victim]!.kill('SIGKILL');
  expect(s.miners[victim]!.running).toBe(false);
  let takeoverMs = -1;
  await waitUntil(
    'the survivor holding the dead owner lease and consuming its stream',
    async () => {
      const now = performance.now();
      if ((await leaseHolder(redis, keys, supplier)) !== survivorId) return false;
      const idle = await consumerIdleMs(redis, keys, supplier, consumer);
      if (idle === undefined || now - idle < killedAt) return false;
      takeoverMs = Math.round(now - killedAt);
      return true;
    },
    15_000,
  );
  return takeoverMs;
}

describe('miner owner SIGKILL', () => {
  it('mid-session: the survivor takes the lease within 5 s and the chain claims exactly the client successes', async () => {
    const s = stack();
    const owners = await splitLeases(s, 20_000);
    const supplier = s.keys.suppliers[0]!.address;
    const victim = owners[0]!;
    const survivor = 1 - victim;

    const reclaimedBefore = await minerMetric(s, 'ha_miner_relays_reclaimed_total');
    const loading = s.load({ rps: RPS, durationMs: 7_000 });
    await sleep(2_000);
    await heightReached(s.net, windowsFor(s.net, s.net.chain.height + 1).session_end_height - 1, 5_000);
    const killHeight = s.net.chain.height;
    const takeoverMs = await killAndMeasureTakeover(s, victim, survivor, supplier);
    const load = await loading;
    const ledger = await s.ledger(load);
    const reclaimed =
      (await minerMetric(s, 'ha_miner_relays_reclaimed_total'))[survivor]! - reclaimedBefore[survivor]!;

    expect((await leaseOwners(s, names)).map((o) => o.owner)).toEqual([survivor, survivor]);
    const relaysToVictim = load.samples.filter((x) => x.supplier === supplier && x.ok).length;
    recordReliability(
      'fault',
      'miner-owner-sigkill-mid-session',
      faultRecord(
        `miner owning supplier 1 of 2 SIGKILLed at height ${killHeight} (second-to-last block of its session), about 2.5 s into a ${RPS} RPS, 7 s run (2 miners, 1 relayer, claim window opening ${CLAIM_OPEN_OFFSET_BLOCKS + 1} blocks after session end, ${WINDOW_BLOCKS}-block windows)`,
        RPS,
        load,
        ledger,
        {
          recovery_ms: takeoverMs,
          extra: {
            takeover_ms: takeoverMs,
            kill_height: killHeight,
            dead_owner_supplier_successes: relaysToVictim,
            pending_entries_reclaimed: reclaimed,
            sessions: ledger.perSession.length,
          },
        },
      ),
    );
    expect(load.successes).toBeGreaterThan(0);
    expect(relaysToVictim).toBeGreaterThan(0);
    expect(takeoverMs).toBeLessThanOrEqual(TAKEOVER_LIMIT_MS);
    expect(mismatched(ledger)).toEqual([]);
    expect(ledgerVerdict(load, ledger)).toEqual(wholeLedger(load.successes));
  }, 75_000);

  it('between claim and proof: the survivor proves the dead owner claims; claimed = client successes', async () => {
    const s = stack();
    // The replica killed above comes back; the survivor hands one supplier over to it.
    const restarted = s.miners.findIndex((m) => !m.running);
    if (restarted >= 0) await s.miners[restarted]!.start();
    const owners = await splitLeases(s, 25_000);
    const supplier = s.keys.suppliers[1]!.address;
    const victim = owners[1]!;
    const survivor = 1 - victim;

    const load = await s.load({ rps: RPS, durationMs: 2_500 });
    const victimSessions = [...load.successesBySession.keys()].filter((k) => k.startsWith(`${supplier}/`));
    expect(victimSessions.length).toBeGreaterThan(0);
    // Every claim of the dead-to-be owner's sessions on chain, none of their proofs yet.
    await waitUntil(
      'the claims of the owner sessions on chain',
      () => victimSessions.every((k) => landed!.claims.has(k)),
      30_000,
    );
    const provedEarly = s.net.chain
      .proofs()
      .filter((p) => victimSessions.includes(`${p.supplierOperatorAddress}/${p.sessionHeader!.sessionId}`));
    expect(provedEarly).toEqual([]);
    const killHeight = s.net.chain.height;
    // A trickle of new relays while the lease moves, so the survivor has a stream to consume.
    const trickle = s.load({ rps: TRICKLE_RPS, durationMs: 6_000 });
    const takeoverMs = await killAndMeasureTakeover(s, victim, survivor, supplier);
    const loads = [load, await trickle];
    const ledger = await s.ledger(loads);
    const successes = load.successes + loads[1]!.successes;

    recordReliability(
      'fault',
      'miner-owner-sigkill-between-claim-and-proof',
      faultRecord(
        `miner owning supplier 2 of 2 SIGKILLed after its claims of a ${RPS} RPS, 2.5 s run landed and before their proofs, under a ${TRICKLE_RPS} RPS trickle (2 miners, 1 relayer, ${WINDOW_BLOCKS}-block windows)`,
        RPS,
        loads,
        ledger,
        {
          recovery_ms: takeoverMs,
          extra: {
            takeover_ms: takeoverMs,
            kill_height: killHeight,
            dead_owner_sessions: victimSessions.length,
            sessions: ledger.perSession.length,
          },
        },
      ),
    );
    expect(takeoverMs).toBeLessThanOrEqual(TAKEOVER_LIMIT_MS);
    expect(mismatched(ledger)).toEqual([]);
    expect(ledgerVerdict(loads, ledger)).toEqual(wholeLedger(successes));
    for (const k of victimSessions) {
      expect(ledger.perSession.find((p) => `${p.supplier}/${p.sessionId}` === k)).toMatchObject({
        proved: true,
      });
    }
  }, 75_000);
});
