/**
 * Session snapshots of the miner (miner.md §3): one Redis hash per (supplier, session) with the
 * upstream field names, the set of every session id of a supplier and one set per state. Every
 * write that spans the hash and the sets is one Lua script, so a state change moves the id between
 * state sets atomically. The counters `relay_count` and `total_compute_units` are only ever
 * written with HINCRBY (addRelays); every other writer leaves them alone.
 *
 * Every write (re)sets the TTL of what it touched, so a snapshot lives `ttl_seconds` past its last
 * change. Index sets can outlive the hashes they name; list() drops such stale ids as it meets them.
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { InvalidInputError, RelayMinerError } from '../core/index.js';
import type { KeyBuilder } from '../transport/index.js';
import {
  SESSION_ADD_RELAYS,
  SESSION_ENSURE,
  SESSION_UPDATE,
  sessionTransitionScript,
} from './lua/session-scripts.js';

export type SessionState =
  | 'active'
  | 'claiming'
  | 'claimed'
  | 'proving'
  | 'proved'
  | 'probabilistic_proved'
  | 'claim_skipped'
  | 'claim_window_closed'
  | 'claim_tx_error'
  | 'claim_missing'
  | 'proof_window_closed'
  | 'proof_tx_error';

export const SESSION_STATES: readonly SessionState[] = [
  'active',
  'claiming',
  'claimed',
  'proving',
  'proved',
  'probabilistic_proved',
  'claim_skipped',
  'claim_window_closed',
  'claim_tx_error',
  'claim_missing',
  'proof_window_closed',
  'proof_tx_error',
];

/** States a session never leaves (miner.md §3 table). */
export const TERMINAL_STATES: ReadonlySet<SessionState> = new Set<SessionState>([
  'proved',
  'probabilistic_proved',
  'claim_skipped',
  'claim_window_closed',
  'claim_tx_error',
  'claim_missing',
  'proof_window_closed',
  'proof_tx_error',
]);

const STATE_SET: ReadonlySet<string> = new Set(SESSION_STATES);

export function isSessionState(s: string): s is SessionState {
  return STATE_SET.has(s);
}

export interface SessionSnapshot {
  session_id: string;
  supplier_operator_address: string;
  service_id: string;
  application_address: string;
  session_start_height: number;
  session_end_height: number;
  state: SessionState;
  relay_count: number;
  total_compute_units: bigint;
  claimed_root_hash?: Uint8Array;
  claim_tx_hash?: string;
  proof_tx_hash?: string;
  /** RFC 3339 with up to nanosecond digits, UTC (Go time.RFC3339Nano). */
  created_at: string;
  last_updated_at: string;
  settlement_outcome?: string;
  settlement_height?: number;
  settlement_tx_hash?: string;
}

/** The identity of a session, written once by ensure(). */
export type SessionIdentity = Pick<
  SessionSnapshot,
  | 'session_id'
  | 'supplier_operator_address'
  | 'service_id'
  | 'application_address'
  | 'session_start_height'
  | 'session_end_height'
>;

/** Fields other than state and counters that transition() and update() may write. */
export type SessionFields = Partial<
  Pick<
    SessionSnapshot,
    | 'claimed_root_hash'
    | 'claim_tx_hash'
    | 'proof_tx_hash'
    | 'settlement_outcome'
    | 'settlement_height'
    | 'settlement_tx_hash'
  >
>;

export interface SessionStoreDeps {
  redis: Redis;
  keys: KeyBuilder;
  log: Logger;
  /** Clock for created_at / last_updated_at. */
  nowMs?: () => number;
}

export interface SessionStoreConfig {
  /** TTL of the snapshot hash and its index sets, refreshed by every write; 0 = none. */
  ttl_seconds: number;
}

/** A Redis command of the session store failed. */
export class SessionStoreError extends RelayMinerError {
  constructor(what: string, opts: { cause?: unknown } = {}) {
    const detail = opts.cause instanceof Error ? `: ${opts.cause.message}` : '';
    super('SESSION_STORE_FAILED', `session store: ${what} failed${detail}`, { ...opts, retryable: true });
  }
}

/** A snapshot hash whose fields cannot be read back (unknown state, non-numeric counter, …). */
export class SessionSnapshotCorruptError extends RelayMinerError {
  constructor(sessionId: string, why: string) {
    super('SESSION_SNAPSHOT_CORRUPT', `session ${sessionId}: snapshot unreadable: ${why}`);
  }
}

/** Go's time.RFC3339Nano for a UTC instant in milliseconds (fraction without trailing zeros). */
export function formatRfc3339Nano(ms: number): string {
  const iso = new Date(ms).toISOString();
  const [whole, frac] = iso.slice(0, -1).split('.');
  const trimmed = (frac ?? '').replace(/0+$/, '');
  return trimmed === '' ? `${whole}Z` : `${whole}.${trimmed}Z`;
}

const MAX_INT64 = (1n << 63n) - 1n;

const OPTIONAL_STRING_FIELDS = [
  'claim_tx_hash',
  'proof_tx_hash',
  'settlement_outcome',
  'settlement_tx_hash',
] as const;

function checkState(what: string, s: unknown): SessionState {
  if (typeof s !== 'string' || !isSessionState(s)) {
    throw new InvalidInputError(what, `must be one of ${SESSION_STATES.join(', ')}, got ${String(s)}`);
  }
  return s;
}

function checkHeight(what: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw new InvalidInputError(what, `must be a non-negative integer, got ${String(v)}`);
  }
  return v;
}

function checkText(what: string, v: unknown): string {
  if (typeof v !== 'string' || v === '') throw new InvalidInputError(what, 'must be a non-empty string');
  return v;
}

/** Field/value pairs for HSET from the optional fields; validates each. */
function fieldArgs(fields: SessionFields): (string | Buffer)[] {
  const out: (string | Buffer)[] = [];
  for (const name of Object.keys(fields)) {
    if (
      name !== 'claimed_root_hash' &&
      name !== 'settlement_height' &&
      !(OPTIONAL_STRING_FIELDS as readonly string[]).includes(name)
    ) {
      throw new InvalidInputError('session field', `${name} cannot be written here`);
    }
  }
  if (fields.claimed_root_hash !== undefined) {
    const r = fields.claimed_root_hash;
    if (!(r instanceof Uint8Array) || r.length === 0) {
      throw new InvalidInputError('claimed_root_hash', 'must be non-empty bytes');
    }
    out.push('claimed_root_hash', Buffer.from(r.buffer, r.byteOffset, r.byteLength));
  }
  for (const name of OPTIONAL_STRING_FIELDS) {
    const v = fields[name];
    if (v !== undefined) out.push(name, checkText(name, v));
  }
  if (fields.settlement_height !== undefined) {
    out.push('settlement_height', String(checkHeight('settlement_height', fields.settlement_height)));
  }
  return out;
}

function parseDecimal(sessionId: string, field: string, raw: Buffer | undefined): bigint {
  const s = raw?.toString('utf8') ?? '';
  if (!/^-?\d+$/.test(s)) throw new SessionSnapshotCorruptError(sessionId, `${field} is not an integer`);
  return BigInt(s);
}

function parseHeight(sessionId: string, field: string, raw: Buffer | undefined): number {
  const v = parseDecimal(sessionId, field, raw);
  if (v < 0n || v > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new SessionSnapshotCorruptError(sessionId, `${field} is out of range`);
  }
  return Number(v);
}

/** Reads a snapshot from HGETALL; undefined for an empty reply (no hash). */
function parseSnapshot(sessionId: string, h: Record<string, Buffer>): SessionSnapshot | undefined {
  if (Object.keys(h).length === 0) return undefined;
  const text = (f: string): string => h[f]?.toString('utf8') ?? '';
  const state = text('state');
  if (!isSessionState(state)) throw new SessionSnapshotCorruptError(sessionId, `unknown state ${state}`);
  const snap: SessionSnapshot = {
    session_id: text('session_id'),
    supplier_operator_address: text('supplier_operator_address'),
    service_id: text('service_id'),
    application_address: text('application_address'),
    session_start_height: parseHeight(sessionId, 'session_start_height', h['session_start_height']),
    session_end_height: parseHeight(sessionId, 'session_end_height', h['session_end_height']),
    state,
    relay_count: parseHeight(sessionId, 'relay_count', h['relay_count']),
    total_compute_units: parseDecimal(sessionId, 'total_compute_units', h['total_compute_units']),
    created_at: text('created_at'),
    last_updated_at: text('last_updated_at'),
  };
  const root = h['claimed_root_hash'];
  if (root !== undefined && root.length > 0) snap.claimed_root_hash = new Uint8Array(root);
  for (const f of OPTIONAL_STRING_FIELDS) {
    const v = text(f);
    if (v !== '') snap[f] = v;
  }
  if (text('settlement_height') !== '') {
    snap.settlement_height = parseHeight(sessionId, 'settlement_height', h['settlement_height']);
  }
  return snap;
}

export class SessionStore {
  private readonly ttl: number;
  private readonly now: () => number;
  private readonly log: Logger;

  constructor(
    private readonly deps: SessionStoreDeps,
    cfg: SessionStoreConfig,
  ) {
    if (!Number.isSafeInteger(cfg.ttl_seconds) || cfg.ttl_seconds < 0) {
      throw new InvalidInputError('session store ttl_seconds', 'must be a non-negative integer');
    }
    this.ttl = cfg.ttl_seconds;
    this.now = deps.nowMs ?? Date.now;
    this.log = deps.log.child({ component: 'session_store' });
  }

  private stamp(): string {
    return formatRfc3339Nano(this.now());
  }

  /** Atomic create-if-absent (Lua); true when this call created it (state 'active', counters 0). */
  async ensure(s: SessionIdentity): Promise<boolean> {
    const supplier = checkText('supplier_operator_address', s.supplier_operator_address);
    const sessionId = checkText('session_id', s.session_id);
    const service = checkText('service_id', s.service_id);
    const app = checkText('application_address', s.application_address);
    const start = checkHeight('session_start_height', s.session_start_height);
    const end = checkHeight('session_end_height', s.session_end_height);
    if (end < start) {
      throw new InvalidInputError('session_end_height', `${end} is below session_start_height ${start}`);
    }
    const k = this.deps.keys;
    const keys = [
      k.minerSession(supplier, sessionId),
      k.minerSessionsIndex(supplier),
      k.minerSessionStateIndex(supplier, 'active'),
    ];
    const now = this.stamp();
    const created = await SESSION_ENSURE.run(this.deps.redis, keys, [
      this.ttl,
      sessionId,
      'session_id',
      sessionId,
      'supplier_operator_address',
      supplier,
      'service_id',
      service,
      'application_address',
      app,
      'session_start_height',
      String(start),
      'session_end_height',
      String(end),
      'state',
      'active',
      'relay_count',
      '0',
      'total_compute_units',
      '0',
      'claimed_root_hash',
      '',
      'claim_tx_hash',
      '',
      'proof_tx_hash',
      '',
      'last_wal_entry_id',
      '',
      'created_at',
      now,
      'last_updated_at',
      now,
    ]);
    return created === 1;
  }

  /**
   * HINCRBY relay_count by `relays` and total_compute_units by `computeUnits` (Lua, one round
   * trip). False (nothing written) when the snapshot does not exist.
   */
  async addRelays(
    supplier: string,
    sessionId: string,
    relays: number,
    computeUnits: bigint,
  ): Promise<boolean> {
    if (!Number.isSafeInteger(relays) || relays < 0) {
      throw new InvalidInputError('relay count increment', `must be a non-negative integer, got ${relays}`);
    }
    if (typeof computeUnits !== 'bigint' || computeUnits < 0n || computeUnits > MAX_INT64) {
      throw new InvalidInputError('compute units increment', 'must be a bigint in [0, 2^63)');
    }
    const key = this.deps.keys.minerSession(supplier, sessionId);
    const r = await SESSION_ADD_RELAYS.run(
      this.deps.redis,
      [key],
      [relays, computeUnits, this.stamp(), this.ttl],
    );
    return r === 1;
  }

  async get(supplier: string, sessionId: string): Promise<SessionSnapshot | undefined> {
    const key = this.deps.keys.minerSession(supplier, sessionId);
    let h: Record<string, Buffer>;
    try {
      h = await this.deps.redis.hgetallBuffer(key);
    } catch (err) {
      throw new SessionStoreError('HGETALL of a snapshot', { cause: err });
    }
    return parseSnapshot(sessionId, h);
  }

  /**
   * The supplier's snapshots, all of them or those in `states`, ordered by session end height then
   * session id. Ids whose hash is gone are removed from the sets they were read from; snapshots
   * that cannot be parsed are skipped with a warning.
   */
  async list(supplier: string, states?: readonly SessionState[]): Promise<SessionSnapshot[]> {
    const k = this.deps.keys;
    const wanted =
      states === undefined ? undefined : new Set(states.map((s) => checkState('session state', s)));
    if (wanted !== undefined && wanted.size === 0) return [];
    const setKeys =
      wanted === undefined
        ? [k.minerSessionsIndex(supplier)]
        : [...wanted].map((s) => k.minerSessionStateIndex(supplier, s));
    let ids: string[];
    try {
      ids =
        setKeys.length === 1
          ? await this.deps.redis.smembers(setKeys[0]!)
          : await this.deps.redis.sunion(...setKeys);
    } catch (err) {
      throw new SessionStoreError('reading a session index', { cause: err });
    }
    if (ids.length === 0) return [];
    const pipe = this.deps.redis.pipeline();
    for (const id of ids) pipe.hgetallBuffer(k.minerSession(supplier, id));
    let replies: [Error | null, unknown][] | null;
    try {
      replies = await pipe.exec();
    } catch (err) {
      throw new SessionStoreError('HGETALL of listed snapshots', { cause: err });
    }
    const out: SessionSnapshot[] = [];
    const stale: string[] = [];
    ids.forEach((id, i) => {
      const [err, h] = replies?.[i] ?? [new Error('no reply'), null];
      if (err !== null) throw new SessionStoreError('HGETALL of a listed snapshot', { cause: err });
      let snap: SessionSnapshot | undefined;
      try {
        snap = parseSnapshot(id, h as Record<string, Buffer>);
      } catch (e) {
        this.log.warn({ session_id: id, err: e }, 'skipping an unreadable session snapshot');
        return;
      }
      if (snap === undefined) stale.push(id);
      else if (wanted === undefined || wanted.has(snap.state)) out.push(snap);
    });
    if (stale.length > 0) await this.dropStale(setKeys, stale);
    out.sort((a, b) => a.session_end_height - b.session_end_height || (a.session_id < b.session_id ? -1 : 1));
    return out;
  }

  /** Removes ids without a hash from the sets they were listed from (best effort). */
  private async dropStale(setKeys: readonly string[], ids: readonly string[]): Promise<void> {
    const pipe = this.deps.redis.pipeline();
    for (const key of setKeys) pipe.srem(key, ...ids);
    try {
      await pipe.exec();
    } catch (err) {
      this.log.debug({ err }, 'removing expired session ids from the indexes failed');
    }
  }

  /**
   * Atomic compare-and-set of the state (Lua): only when the current state is in `from`; moves the
   * id between state index sets and sets `fields`; false when the state did not match or the
   * snapshot does not exist.
   */
  async transition(
    supplier: string,
    sessionId: string,
    from: readonly SessionState[],
    to: SessionState,
    fields: SessionFields = {},
  ): Promise<boolean> {
    const target = checkState('target session state', to);
    const accepted = [...new Set(from.map((s) => checkState('accepted session state', s)))];
    if (accepted.length === 0) throw new InvalidInputError('accepted session states', 'must not be empty');
    const extra = fieldArgs(fields);
    const k = this.deps.keys;
    const keys = [
      k.minerSession(supplier, sessionId),
      k.minerSessionsIndex(supplier),
      k.minerSessionStateIndex(supplier, target),
      ...accepted.map((s) => k.minerSessionStateIndex(supplier, s)),
    ];
    const r = await sessionTransitionScript(accepted.length).run(this.deps.redis, keys, [
      target,
      sessionId,
      this.ttl,
      accepted.length,
      ...accepted,
      ...extra,
      'last_updated_at',
      this.stamp(),
    ]);
    return r === 1;
  }

  /**
   * Sets non-state fields (tx hashes, settlement) without touching state or counters. False
   * (nothing written) when the snapshot does not exist.
   */
  async update(supplier: string, sessionId: string, fields: SessionFields): Promise<boolean> {
    const extra = fieldArgs(fields);
    const key = this.deps.keys.minerSession(supplier, sessionId);
    const r = await SESSION_UPDATE.run(
      this.deps.redis,
      [key],
      [this.ttl, ...extra, 'last_updated_at', this.stamp()],
    );
    return r === 1;
  }

  /** Deletes the snapshot and removes its id from the index and every state set, in one transaction. */
  async delete(supplier: string, sessionId: string): Promise<void> {
    const k = this.deps.keys;
    const tx = this.deps.redis.multi();
    tx.del(k.minerSession(supplier, sessionId));
    tx.srem(k.minerSessionsIndex(supplier), sessionId);
    for (const s of SESSION_STATES) tx.srem(k.minerSessionStateIndex(supplier, s), sessionId);
    let replies: [Error | null, unknown][] | null;
    try {
      replies = await tx.exec();
    } catch (err) {
      throw new SessionStoreError('deleting a snapshot', { cause: err });
    }
    if (replies === null) throw new SessionStoreError('deleting a snapshot (transaction aborted)');
    for (const [err] of replies) {
      if (err !== null) throw new SessionStoreError('deleting a snapshot', { cause: err });
    }
  }
}
