/** `redis leader`: the global leader lock and the live miner replicas. */
import { formatTable, ttlText, type Out, type RedisCli } from './context.js';

export type LeaderHealth = 'Healthy (recently renewed)' | 'OK' | 'WARNING - TTL low' | 'CRITICAL';

export interface LeaderReport {
  key: string;
  /** Instance id holding the lock; null when there is no leader. */
  instance_id: string | null;
  ttl_seconds: number;
  /** The configured lock TTL the status is judged against. */
  leader_ttl_seconds: number;
  status: LeaderHealth | 'No active leader';
  /** Members of the miner active set with their heartbeat TTL. */
  replicas: { instance_id: string; ttl_seconds: number }[];
}

/** The miner's default `leader_election.leader_ttl_seconds`. */
export const DEFAULT_LEADER_TTL_SECONDS = 4;

/**
 * Health by remaining TTL as a share of the configured lock TTL: above ⅔ it was just renewed,
 * above ⅓ it is fine, above 0 a renewal is late (upstream: 20 s / 10 s of a 30 s TTL).
 */
export function leaderHealth(
  ttlSeconds: number,
  leaderTtlSeconds = DEFAULT_LEADER_TTL_SECONDS,
): LeaderHealth {
  if (ttlSeconds * 3 > leaderTtlSeconds * 2) return 'Healthy (recently renewed)';
  if (ttlSeconds * 3 > leaderTtlSeconds) return 'OK';
  if (ttlSeconds > 0) return 'WARNING - TTL low';
  return 'CRITICAL';
}

export async function leaderReport(
  cli: RedisCli,
  leaderTtlSeconds = DEFAULT_LEADER_TTL_SECONDS,
): Promise<LeaderReport> {
  const key = cli.keys.globalLeader();
  const [id, pttl, members] = await Promise.all([
    cli.redis.get(key),
    cli.redis.pttl(key),
    cli.redis.smembers(cli.keys.minerActiveSet()),
  ]);
  const ttl = pttl > 0 ? Math.round(pttl / 100) / 10 : pttl;
  const replicas: LeaderReport['replicas'] = [];
  for (const m of members.sort()) {
    let t: number;
    try {
      t = await cli.redis.ttl(cli.keys.minerInstance(m));
    } catch {
      t = -2;
    }
    replicas.push({ instance_id: m, ttl_seconds: t });
  }
  return {
    key,
    instance_id: id,
    ttl_seconds: id === null ? -2 : ttl,
    leader_ttl_seconds: leaderTtlSeconds,
    status: id === null ? 'No active leader' : leaderHealth(ttl, leaderTtlSeconds),
    replicas,
  };
}

export function printLeader(r: LeaderReport, out: Out): void {
  if (r.instance_id === null) out(`No active leader (key ${r.key})\n`);
  else {
    out(
      `Leader:   ${r.instance_id}\nTTL:      ${ttlText(r.ttl_seconds)} of ${r.leader_ttl_seconds}s\nKey:      ${r.key}\nStatus:   ${r.status}\n`,
    );
  }
  if (r.replicas.length > 0) {
    out('\nReplicas\n');
    out(
      formatTable(
        ['INSTANCE', 'HEARTBEAT TTL', 'LEADER'],
        r.replicas.map((x) => [
          x.instance_id,
          ttlText(x.ttl_seconds),
          x.instance_id === r.instance_id ? 'yes' : '',
        ]),
      ),
    );
  }
}
