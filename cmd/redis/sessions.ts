/** `redis sessions`: the miner's session snapshots of one supplier. */
import pino from 'pino';
import { SessionStore, isSessionState, type SessionSnapshot, type SessionState } from '../../miner/index.js';
import { RedisCliUsageError, formatTable, type Out, type RedisCli } from './context.js';

export interface SessionsQuery {
  supplier: string;
  session?: string;
  state?: string;
}

function store(cli: RedisCli): SessionStore {
  return new SessionStore(
    { redis: cli.redis, keys: cli.keys, log: pino({ level: 'silent' }) },
    { ttl_seconds: 0 },
  );
}

/** Snapshots ordered by end height then id; read-only (ids whose hash expired are skipped). */
export async function listSessions(cli: RedisCli, q: SessionsQuery): Promise<SessionSnapshot[]> {
  let state: SessionState | undefined;
  if (q.state !== undefined) {
    if (!isSessionState(q.state)) throw new RedisCliUsageError(`--state: unknown session state ${q.state}`);
    state = q.state;
  }
  const s = store(cli);
  let ids: string[];
  if (q.session !== undefined) ids = [q.session];
  else {
    const set =
      state === undefined
        ? cli.keys.minerSessionsIndex(q.supplier)
        : cli.keys.minerSessionStateIndex(q.supplier, state);
    ids = await cli.redis.smembers(set);
  }
  const out: SessionSnapshot[] = [];
  for (const id of ids) {
    const snap = await s.get(q.supplier, id);
    if (snap === undefined) continue;
    if (state !== undefined && snap.state !== state) continue;
    out.push(snap);
  }
  out.sort((a, b) => a.session_end_height - b.session_end_height || (a.session_id < b.session_id ? -1 : 1));
  return out;
}

export function printSessions(q: SessionsQuery, rows: readonly SessionSnapshot[], out: Out): void {
  if (rows.length === 0) {
    out(`No sessions for supplier ${q.supplier}${q.state !== undefined ? ` in state ${q.state}` : ''}\n`);
    return;
  }
  out(
    formatTable(
      [
        'SESSION',
        'SERVICE',
        'START',
        'END',
        'STATE',
        'RELAYS',
        'COMPUTE UNITS',
        'CLAIM TX',
        'PROOF TX',
        'UPDATED',
      ],
      rows.map((s) => [
        s.session_id,
        s.service_id,
        s.session_start_height,
        s.session_end_height,
        s.state,
        s.relay_count,
        s.total_compute_units,
        s.claim_tx_hash,
        s.proof_tx_hash,
        s.last_updated_at,
      ]),
    ),
  );
  out(`${rows.length} session(s)\n`);
}
