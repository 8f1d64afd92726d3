/** `redis cache`: inspect, list and invalidate the shared (L2) cache entries. */
import { readFileSync } from 'node:fs';
import { isSupplierStateContaminated, supplierStateSchema } from '../../cache/index.js';
import type { InvalidationType } from '../../transport/index.js';
import { confirmDestructive, type ConfirmIo } from './confirm.js';
import {
  RedisCliUsageError,
  checkId,
  formatTable,
  printable,
  scanKeys,
  ttlText,
  type Out,
  type RedisCli,
} from './context.js';

export const CACHE_TYPES = [
  'application',
  'service',
  'account',
  'supplier',
  'shared_params',
  'session_params',
  'proof_params',
] as const;
export type CacheType = (typeof CACHE_TYPES)[number];

interface TypeLayout {
  /** Key of one entry (keyed types) or the singleton key. */
  key(id: string): string;
  /** SCAN pattern of every entry, or the singleton key. */
  pattern: string;
  singleton: boolean;
  channel: string;
  /** Invalidation payload for one id (`{}` = all). */
  payload(id: string): string;
  knownSet?: string;
}

function layout(cli: RedisCli, t: CacheType): TypeLayout {
  const k = cli.keys;
  const single = (key: string, ch: InvalidationType): TypeLayout => ({
    key: () => key,
    pattern: key,
    singleton: true,
    channel: k.invalidationChannel(ch),
    payload: () => '{}',
  });
  switch (t) {
    case 'application':
      return {
        key: (id) => k.applicationKey(id),
        pattern: k.cachePattern('application'),
        singleton: false,
        channel: k.invalidationChannel('application'),
        payload: (id) => JSON.stringify({ address: id }),
        knownSet: k.knownSet('applications'),
      };
    case 'service':
      return {
        key: (id) => k.serviceKey(id),
        pattern: k.cachePattern('service'),
        singleton: false,
        channel: k.invalidationChannel('service'),
        payload: (id) => JSON.stringify({ service_id: id }),
        knownSet: k.knownSet('services'),
      };
    case 'account':
      return {
        key: (id) => k.accountKey(id),
        pattern: k.cachePattern('account'),
        singleton: false,
        channel: k.invalidationChannel('account'),
        payload: (id) => JSON.stringify({ address: id }),
      };
    case 'supplier':
      return {
        key: (id) => k.supplierState(id),
        pattern: k.supplierStatePattern(),
        singleton: false,
        channel: k.invalidationChannel('supplier'),
        payload: (id) => JSON.stringify({ operator_address: id }),
      };
    case 'shared_params':
      return single(k.sharedParamsKey(), 'shared_params');
    case 'session_params':
      return single(k.sessionParamsKey(), 'session_params');
    case 'proof_params':
      return single(k.proofParamsKey(), 'proof_params');
  }
}

export function parseCacheType(v: string | undefined): CacheType | 'all' {
  const t = v ?? 'all';
  if (t === 'all' || (CACHE_TYPES as readonly string[]).includes(t)) return t as CacheType | 'all';
  throw new RedisCliUsageError(`--type: expected one of ${[...CACHE_TYPES, 'all'].join(', ')}; got ${t}`);
}

export interface CacheEntry {
  type: CacheType;
  key: string;
  exists: boolean;
  size_bytes: number;
  ttl_seconds: number;
  /** First 500 characters (UTF-8, or hex for binary values). */
  preview?: string;
}

async function describe(
  cli: RedisCli,
  type: CacheType,
  key: string,
  withPreview: boolean,
): Promise<CacheEntry> {
  const [size, ttl, value] = await Promise.all([
    cli.redis.strlen(key).catch(() => 0),
    cli.redis.ttl(key),
    withPreview ? cli.redis.getBuffer(key).catch(() => null) : Promise.resolve(null),
  ]);
  return {
    type,
    key,
    exists: ttl !== -2,
    size_bytes: size,
    ttl_seconds: ttl,
    ...(value !== null ? { preview: printable(value, 500) } : {}),
  };
}

function typesOf(t: CacheType | 'all'): CacheType[] {
  return t === 'all' ? [...CACHE_TYPES] : [t];
}

/** One entry: `id` is the address / service id (ignored for singletons). */
export async function inspectCache(cli: RedisCli, type: CacheType, id: string): Promise<CacheEntry> {
  const l = layout(cli, type);
  return describe(cli, type, l.key(l.singleton ? '' : checkId('--key', id)), true);
}

export async function listCache(cli: RedisCli, type: CacheType | 'all'): Promise<CacheEntry[]> {
  const out: CacheEntry[] = [];
  for (const t of typesOf(type)) {
    const l = layout(cli, t);
    const keys = l.singleton ? [l.pattern] : await scanKeys(cli.redis, l.pattern);
    for (const key of keys) {
      const e = await describe(cli, t, key, false);
      if (e.exists) out.push(e);
    }
  }
  return out;
}

export interface InvalidateRequest {
  type: CacheType | 'all';
  key?: string;
  all?: boolean;
  keyFile?: string;
  dryRun?: boolean;
  yes?: boolean;
}

export interface InvalidatePlan {
  /** Keys to delete. */
  keys: string[];
  /** Known-set removals. */
  srem: { set: string; member: string }[];
  /** Invalidations to publish. */
  publish: { channel: string; payload: string }[];
  /** Registry entries kept because they are healthy (deleting them would fail relays). */
  kept_suppliers: number;
  needs_confirmation: boolean;
}

export interface InvalidateResult extends InvalidatePlan {
  deleted: number;
  dry_run: boolean;
  confirmed: boolean;
}

function idsFromFile(path: string): string[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

export async function planInvalidation(cli: RedisCli, r: InvalidateRequest): Promise<InvalidatePlan> {
  const given = [r.key !== undefined, r.all === true, r.keyFile !== undefined].filter(Boolean).length;
  if (given !== 1) throw new RedisCliUsageError('--invalidate needs exactly one of --key, --all, --key-file');
  const plan: InvalidatePlan = {
    keys: [],
    srem: [],
    publish: [],
    kept_suppliers: 0,
    needs_confirmation: false,
  };
  if (r.all === true && r.type === 'all') {
    // Hot-safe cleanup: every cache entry but the fill locks, only corrupted registry entries.
    const lockPrefix = `${cli.keys.cachePrefix()}:lock:`;
    plan.keys = (await scanKeys(cli.redis, `${cli.keys.cachePrefix()}:*`)).filter(
      (k) => !k.startsWith(lockPrefix),
    );
    for (const key of await scanKeys(cli.redis, cli.keys.supplierStatePattern())) {
      if (cli.keys.supplierFromStateKey(key) === undefined) continue;
      const raw = await cli.redis.get(key).catch(() => null);
      let corrupted: boolean;
      try {
        corrupted = raw === null || isSupplierStateContaminated(supplierStateSchema.parse(JSON.parse(raw)));
      } catch {
        corrupted = true;
      }
      if (corrupted) plan.keys.push(key);
      else plan.kept_suppliers++;
    }
    for (const t of CACHE_TYPES) plan.publish.push({ channel: layout(cli, t).channel, payload: '{}' });
    plan.needs_confirmation = true;
    return plan;
  }
  if (r.type === 'all')
    throw new RedisCliUsageError('--type all can only be combined with --invalidate --all');
  const l = layout(cli, r.type);
  if (r.all === true) {
    plan.keys = l.singleton ? [l.pattern] : await scanKeys(cli.redis, l.pattern);
    if (l.knownSet !== undefined) plan.keys.push(l.knownSet);
    plan.publish.push({ channel: l.channel, payload: '{}' });
    plan.needs_confirmation = plan.keys.length > 100 || r.type === 'supplier';
    return plan;
  }
  const ids = r.key !== undefined ? [r.key] : idsFromFile(r.keyFile!);
  for (const id of ids) {
    checkId('cache key', id);
    plan.keys.push(l.key(id));
    if (l.knownSet !== undefined) plan.srem.push({ set: l.knownSet, member: id });
    plan.publish.push({ channel: l.channel, payload: l.singleton ? '{}' : l.payload(id) });
  }
  plan.needs_confirmation = r.keyFile !== undefined && (ids.length > 100 || r.type === 'supplier');
  return plan;
}

export async function invalidateCache(
  cli: RedisCli,
  r: InvalidateRequest,
  io: ConfirmIo,
  out: Out,
): Promise<InvalidateResult> {
  const plan = await planInvalidation(cli, r);
  if (r.dryRun === true) return { ...plan, deleted: 0, dry_run: true, confirmed: false };
  if (plan.needs_confirmation) {
    out(
      `About to delete ${plan.keys.length} cache key(s) and publish ${plan.publish.length} invalidation(s).\n`,
    );
    const ok = await confirmDestructive(r.yes === true, io, 'Invalidate these cache entries?', 'yes');
    if (!ok) return { ...plan, deleted: 0, dry_run: false, confirmed: false };
  }
  let deleted = 0;
  for (let i = 0; i < plan.keys.length; i += 500)
    deleted += await cli.redis.del(...plan.keys.slice(i, i + 500));
  for (const s of plan.srem) await cli.redis.srem(s.set, s.member);
  for (const p of plan.publish) await cli.redis.publish(p.channel, p.payload);
  return { ...plan, deleted, dry_run: false, confirmed: true };
}

export function printCacheEntries(rows: readonly CacheEntry[], out: Out): void {
  if (rows.length === 0) {
    out('No cache entries\n');
    return;
  }
  out(
    formatTable(
      ['TYPE', 'KEY', 'SIZE', 'TTL'],
      rows.map((r) => [r.type, r.key, r.size_bytes, ttlText(r.ttl_seconds)]),
    ),
  );
}

export function printCacheEntry(e: CacheEntry, out: Out): void {
  if (!e.exists) {
    out(`Not found: ${e.key}\n`);
    return;
  }
  out(
    `Key:   ${e.key}\nType:  ${e.type}\nSize:  ${e.size_bytes} bytes\nTTL:   ${ttlText(e.ttl_seconds)}\nValue: ${e.preview ?? ''}\n`,
  );
}

export function printInvalidation(r: InvalidateResult, out: Out): void {
  if (r.dry_run) {
    out(`Dry run: would delete ${r.keys.length} key(s):\n`);
    for (const k of r.keys) out(`  ${k}\n`);
    for (const p of r.publish) out(`  publish ${p.channel} ${p.payload}\n`);
    return;
  }
  if (!r.confirmed) {
    out('Aborted; nothing deleted\n');
    return;
  }
  out(`Deleted ${r.deleted} key(s); published ${r.publish.length} invalidation(s)`);
  out(
    r.kept_suppliers > 0
      ? `; kept ${r.kept_suppliers} healthy supplier registry ${r.kept_suppliers === 1 ? 'entry' : 'entries'}\n`
      : '\n',
  );
}
