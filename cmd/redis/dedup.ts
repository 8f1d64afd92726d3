/**
 * `redis dedup`: the miner's set of requests already mined in a session, each identified by its
 * ring-signature challenge c0 (the relay hash when the request could not be read).
 */
import { formatTable, ttlText, type Out, type RedisCli } from './context.js';

export interface DedupReport {
  key: string;
  members: number;
  ttl_seconds: number;
  /** Hex request identities, at most `limit`. */
  sample: string[];
}

export async function dedupReport(cli: RedisCli, sessionId: string, limit: number): Promise<DedupReport> {
  const key = cli.keys.minerDedupSession(sessionId);
  const [members, ttl] = await Promise.all([cli.redis.scard(key), cli.redis.ttl(key)]);
  const sample: string[] = [];
  let cursor = '0';
  while (sample.length < limit && members > 0) {
    const [next, found] = await cli.redis.sscanBuffer(key, cursor, 'COUNT', Math.max(limit, 10));
    cursor = next.toString();
    for (const m of found) if (sample.length < limit) sample.push(m.toString('hex'));
    if (cursor === '0') break;
  }
  sample.sort();
  return { key, members, ttl_seconds: ttl, sample };
}

export function printDedup(r: DedupReport, out: Out): void {
  if (r.members === 0) {
    out(`No dedup set at ${r.key} (expired or never written)\n`);
    return;
  }
  out(`Key:      ${r.key}\nMembers:  ${r.members}\nTTL:      ${ttlText(r.ttl_seconds)}\n`);
  if (r.sample.length > 0)
    out(
      formatTable(
        ['REQUEST (RING SIGNATURE C0)'],
        r.sample.map((h) => [h]),
      ),
    );
}
