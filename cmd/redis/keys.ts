/** `redis keys`: SCAN listing of the namespace, optionally with type and TTL. */
import { formatTable, scanKeys, ttlText, type Out, type RedisCli } from './context.js';

export interface KeyRow {
  key: string;
  type?: string;
  ttl_seconds?: number;
}

export interface KeysReport {
  pattern: string;
  keys: KeyRow[];
  truncated: boolean;
}

export async function listKeys(
  cli: RedisCli,
  pattern: string,
  limit: number,
  stats: boolean,
): Promise<KeysReport> {
  const found = await scanKeys(cli.redis, pattern, limit > 0 ? limit + 1 : undefined);
  const truncated = limit > 0 && found.length > limit;
  const keys = truncated ? found.slice(0, limit) : found;
  const rows: KeyRow[] = [];
  for (const key of keys) {
    if (!stats) rows.push({ key });
    else {
      const [type, ttl] = await Promise.all([cli.redis.type(key), cli.redis.ttl(key)]);
      rows.push({ key, type, ttl_seconds: ttl });
    }
  }
  return { pattern, keys: rows, truncated };
}

export function printKeys(r: KeysReport, stats: boolean, out: Out): void {
  if (r.keys.length === 0) {
    out(`No keys match ${r.pattern}\n`);
    return;
  }
  if (stats) {
    out(
      formatTable(
        ['#', 'KEY', 'TYPE', 'TTL'],
        r.keys.map((k, i) => [i + 1, k.key, k.type, ttlText(k.ttl_seconds ?? -2)]),
      ),
    );
  } else {
    for (const k of r.keys) out(`${k.key}\n`);
  }
  out(`${r.keys.length} key(s)${r.truncated ? ' (limit reached; raise --limit for more)' : ''}\n`);
}
