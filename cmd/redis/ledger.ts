/** `redis ledger`: the per-session relay buckets and uPOKT fields the miner keeps. */
import pino from 'pino';
import {
  MinerLedger,
  RELAY_BUCKETS,
  SessionStore,
  createMinerLifecycleMetrics,
  type RelayBucket,
  type SessionLedger,
} from '../../miner/index.js';
import { Registry } from 'prom-client';
import { formatTable, type Out, type RedisCli } from './context.js';

export interface LedgerRow {
  session_id: string;
  state?: string;
  relay_count?: number;
  ledger: SessionLedger;
}

export interface LedgerReport {
  supplier: string;
  sessions: LedgerRow[];
  /** Sum of each relay bucket and uPOKT field over the listed sessions. */
  totals: SessionLedger;
}

export async function ledgerReport(cli: RedisCli, supplier: string, session?: string): Promise<LedgerReport> {
  const ledger = new MinerLedger({
    redis: cli.redis,
    keys: cli.keys,
    metrics: createMinerLifecycleMetrics(new Registry()),
  });
  const snaps = new SessionStore(
    { redis: cli.redis, keys: cli.keys, log: pino({ level: 'silent' }) },
    { ttl_seconds: 0 },
  );
  const ids =
    session !== undefined
      ? [session]
      : (await cli.redis.smembers(cli.keys.minerSessionsIndex(supplier))).sort();
  const sessions: LedgerRow[] = [];
  const totals: SessionLedger = { relays: {}, upokt: {} };
  for (const id of ids) {
    const l = await ledger.get(supplier, id);
    const snap = await snaps.get(supplier, id);
    if (snap === undefined && Object.keys(l.relays).length === 0 && Object.keys(l.upokt).length === 0)
      continue;
    sessions.push({
      session_id: id,
      ...(snap !== undefined ? { state: snap.state, relay_count: snap.relay_count } : {}),
      ledger: l,
    });
    for (const [k, v] of Object.entries(l.relays) as [RelayBucket, bigint][])
      totals.relays[k] = (totals.relays[k] ?? 0n) + v;
    for (const [k, v] of Object.entries(l.upokt) as [keyof SessionLedger['upokt'], bigint][])
      totals.upokt[k] = (totals.upokt[k] ?? 0n) + v;
  }
  return { supplier, sessions, totals };
}

export function printLedger(r: LedgerReport, out: Out): void {
  if (r.sessions.length === 0) {
    out(`No ledger entries for supplier ${r.supplier}\n`);
    return;
  }
  const buckets = RELAY_BUCKETS.filter((b) => r.totals.relays[b] !== undefined);
  const upokt = (['settled_upokt', 'fee_estimated_upokt', 'fee_actual_upokt'] as const).filter(
    (f) => r.totals.upokt[f] !== undefined,
  );
  const row = (id: string, state: string | undefined, l: SessionLedger): unknown[] => [
    id,
    state,
    ...buckets.map((b) => l.relays[b] ?? 0n),
    ...upokt.map((f) => l.upokt[f] ?? 0n),
  ];
  out(
    formatTable(
      ['SESSION', 'STATE', ...buckets.map((b) => b.toUpperCase()), ...upokt.map((f) => f.toUpperCase())],
      [...r.sessions.map((s) => row(s.session_id, s.state, s.ledger)), row('TOTAL', '', r.totals)],
    ),
  );
}
