/** `redis meter`: the relay meter's per-(session, supplier) budget and consumption. */
import type { SessionMeterMeta } from '../../relayer/index.js';
import { formatTable, ttlText, type Out, type RedisCli } from './context.js';

export interface MeterEntry {
  session_id: string;
  supplier: string;
  meta_key: string;
  consumed_key: string;
  meta?: SessionMeterMeta;
  /** uPOKT consumed so far; undefined when the counter is absent. */
  consumed_upokt?: bigint;
  remaining_upokt?: bigint;
  ttl_seconds: number;
  active: boolean;
}

export interface MeterQuery {
  session?: string;
  supplier?: string;
  all?: boolean;
}

async function entry(
  cli: RedisCli,
  sessionId: string,
  supplier: string,
  active: boolean,
): Promise<MeterEntry> {
  const k = cli.meterKeys;
  const metaKey = k.meterMeta(sessionId, supplier);
  const consumedKey = k.meterConsumed(sessionId, supplier);
  const [meta, consumed, ttl] = await Promise.all([
    cli.redis.get(metaKey),
    cli.redis.get(consumedKey),
    cli.redis.ttl(consumedKey),
  ]);
  let parsed: SessionMeterMeta | undefined;
  try {
    parsed = meta !== null ? (JSON.parse(meta) as SessionMeterMeta) : undefined;
  } catch {
    parsed = undefined;
  }
  const c = consumed !== null && /^-?\d+$/.test(consumed) ? BigInt(consumed) : undefined;
  return {
    session_id: sessionId,
    supplier,
    meta_key: metaKey,
    consumed_key: consumedKey,
    ...(parsed !== undefined ? { meta: parsed } : {}),
    ...(c !== undefined ? { consumed_upokt: c } : {}),
    ...(c !== undefined && parsed !== undefined
      ? { remaining_upokt: BigInt(Math.trunc(parsed.max_stake_upokt)) - c }
      : {}),
    ttl_seconds: ttl,
    active,
  };
}

/** Meter entries from the active-session set, filtered by session and supplier. */
export async function meterEntries(cli: RedisCli, q: MeterQuery): Promise<MeterEntry[]> {
  const members = await cli.redis.smembers(cli.meterKeys.meterActiveSessions());
  const pairs = new Map<string, [string, string, boolean]>();
  for (const m of members) {
    const i = m.indexOf('|');
    if (i <= 0) continue;
    const session = m.slice(0, i);
    const supplier = m.slice(i + 1);
    if (q.session !== undefined && session !== q.session) continue;
    if (q.supplier !== undefined && supplier !== q.supplier) continue;
    pairs.set(m, [session, supplier, true]);
  }
  if (q.session !== undefined && q.supplier !== undefined && pairs.size === 0) {
    pairs.set('', [q.session, q.supplier, false]);
  }
  const out: MeterEntry[] = [];
  for (const [session, supplier, active] of pairs.values())
    out.push(await entry(cli, session, supplier, active));
  out.sort((a, b) => (a.session_id + a.supplier < b.session_id + b.supplier ? -1 : 1));
  return out.filter((e) => e.active || e.meta !== undefined || e.consumed_upokt !== undefined);
}

export function printMeter(rows: readonly MeterEntry[], out: Out): void {
  if (rows.length === 0) {
    out('No relay meter entries (metering off, or cleaned up after the claim)\n');
    return;
  }
  out(
    formatTable(
      ['SESSION', 'SUPPLIER', 'APP', 'SERVICE', 'END', 'CONSUMED', 'MAX STAKE', 'REMAINING', 'TTL'],
      rows.map((r) => [
        r.session_id,
        r.supplier,
        r.meta?.app_address,
        r.meta?.service_id,
        r.meta?.session_end_height,
        r.consumed_upokt,
        r.meta?.max_stake_upokt,
        r.remaining_upokt,
        ttlText(r.ttl_seconds),
      ]),
    ),
  );
}
