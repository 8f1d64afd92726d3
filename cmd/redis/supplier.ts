/** `redis supplier`: the supplier registry the relayers gate on, and which replica owns each supplier. */
import {
  isSupplierActive,
  isSupplierStateContaminated,
  supplierStateSchema,
  type SupplierState,
} from '../../cache/index.js';
import { formatTable, scanKeys, ttlText, type Out, type RedisCli } from './context.js';

export interface SupplierEntry {
  operator_address: string;
  key: string;
  /** Parsed entry; undefined when the JSON is unreadable. */
  state?: SupplierState;
  active: boolean;
  corrupted: boolean;
  error?: string;
}

export interface SupplierClaim {
  supplier: string;
  instance_id: string | null;
  ttl_seconds: number;
}

export async function readSupplier(cli: RedisCli, operator: string): Promise<SupplierEntry | undefined> {
  const key = cli.keys.supplierState(operator);
  const raw = await cli.redis.get(key);
  if (raw === null) return undefined;
  return parseEntry(operator, key, raw);
}

function parseEntry(operator: string, key: string, raw: string): SupplierEntry {
  try {
    const state = supplierStateSchema.parse(JSON.parse(raw));
    return {
      operator_address: operator,
      key,
      state,
      active: isSupplierActive(state),
      corrupted: isSupplierStateContaminated(state),
    };
  } catch (err) {
    return {
      operator_address: operator,
      key,
      active: false,
      corrupted: true,
      error: err instanceof Error ? err.message.split('\n')[0]! : String(err),
    };
  }
}

/** Every registry entry, staked or not. */
export async function listSuppliers(cli: RedisCli): Promise<SupplierEntry[]> {
  const out: SupplierEntry[] = [];
  for (const key of await scanKeys(cli.redis, cli.keys.supplierStatePattern())) {
    const op = cli.keys.supplierFromStateKey(key);
    if (op === undefined) continue;
    if ((await cli.redis.type(key)) !== 'string') continue;
    const raw = await cli.redis.get(key);
    if (raw !== null) out.push(parseEntry(op, key, raw));
  }
  return out;
}

/** Lease holder of every registered supplier (plus `extra` suppliers). */
export async function supplierClaims(cli: RedisCli, extra: readonly string[] = []): Promise<SupplierClaim[]> {
  const suppliers = new Set([...(await listSuppliers(cli)).map((s) => s.operator_address), ...extra]);
  const out: SupplierClaim[] = [];
  for (const s of [...suppliers].sort()) {
    const key = cli.keys.minerClaim(s);
    const [id, ttl] = await Promise.all([cli.redis.get(key), cli.redis.ttl(key)]);
    out.push({ supplier: s, instance_id: id, ttl_seconds: ttl });
  }
  return out;
}

export function printSupplierEntries(rows: readonly SupplierEntry[], out: Out): void {
  if (rows.length === 0) {
    out('No supplier registry entries\n');
    return;
  }
  out(
    formatTable(
      ['SUPPLIER', 'STATUS', 'STAKED', 'ACTIVE', 'SERVICES', 'UNSTAKE END', 'UPDATED', 'NOTE'],
      rows.map((r) => [
        r.operator_address,
        r.state?.status,
        r.state?.staked,
        r.active,
        r.state?.services.join(','),
        r.state?.unstake_session_end_height,
        r.state !== undefined ? new Date(r.state.last_updated * 1000).toISOString() : undefined,
        r.error !== undefined ? `unreadable: ${r.error}` : r.corrupted ? 'corrupted (no services)' : '',
      ]),
    ),
  );
}

export function printSupplierClaims(rows: readonly SupplierClaim[], out: Out): void {
  out(
    formatTable(
      ['SUPPLIER', 'OWNER INSTANCE', 'LEASE TTL'],
      rows.map((r) => [r.supplier, r.instance_id ?? '(unclaimed)', ttlText(r.ttl_seconds)]),
    ),
  );
  const per = new Map<string, number>();
  for (const r of rows) if (r.instance_id !== null) per.set(r.instance_id, (per.get(r.instance_id) ?? 0) + 1);
  out('\nDistribution\n');
  out(
    formatTable(
      ['INSTANCE', 'SUPPLIERS'],
      [...per.entries()].sort().map(([i, n]) => [i, n]),
    ),
  );
}
