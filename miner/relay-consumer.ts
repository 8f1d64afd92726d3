/**
 * Consumes one supplier's relay stream (miner.md §2): reads `ha:relays:{supplier}` as a member of
 * the `ha-miners` consumer group on a connection of its own, inserts every relay into the
 * session's SMST, counts it in the session snapshot, and only then acknowledges and deletes the
 * stream entries (XACK + XDEL in one MULTI; Redis 7.0 has no XACKDEL).
 *
 * Batch order, per session of the batch:
 *   1. a terminal snapshot or a sealed trie → every relay is dropped as `session_sealed`;
 *   2. relays whose request is already in the session's dedup set are duplicates (SMISMEMBER);
 *   3. the rest go into the trie, which is committed and checkpointed (nodes + live_root in one
 *      transaction), so a new owner resuming from live_root sees them;
 *   4. their request identities are added to the dedup set; only those added by this call count
 *      as inserted;
 *   5. the snapshot is created if absent and its counters are raised by the inserted relays;
 *   6. the entries are acknowledged and deleted.
 *
 * `caughtUp()` resolves once the entries waiting at start are handled: the first reclaim pass is
 * done and a read (not blocking while catching up) returned fewer than `batch_size` entries. A new
 * owner seals no trie before that, or the relays published while the supplier had no consumer
 * (a dead owner's backlog) would arrive after the seal and be dropped as `session_sealed`.
 *
 * The dedup set holds request identities, not relay hashes: the ring signature's challenge c0
 * (mod N), unique to one signing by the gateway or app. A signed request replayed to this supplier
 * (to one relayer or several) is served again, and its response differs (a backend Date header is
 * enough), so it mines to a new relay hash; keyed by the request, it is still claimed once. Legit
 * requests with identical content differ in c0. A relay whose request cannot be read falls back to
 * its relay hash.
 *
 * Upstream checks the dedup set only for reclaimed entries. Here every entry is checked: the
 * stream is at-least-once (a consumer that dies after step 3 leaves its entries pending, and the
 * reclaimer delivers them again as fresh work; a relayer that retries XADD after a lost reply
 * publishes the same relay twice), and the trie absorbs a repeat silently while the snapshot
 * counters and the per-batch results would count it twice. Because a hash enters the set only
 * after its trie checkpoint, a crash anywhere in the batch leaves either a re-insert (harmless)
 * or a counted, durable relay; counters can fall short only if the process dies between steps 4
 * and 5.
 *
 * A failure that may pass (Redis unreachable, a trie node that cannot be loaded) leaves that
 * session's entries pending; XAUTOCLAIM of entries idle for `claim_idle_timeout_ms` hands them
 * back to whichever consumer runs it next (this one included) every `reclaim_interval_ms`. At
 * start (the lease was just taken) every pending entry is claimed whatever its idle time: a dead
 * owner's entries must be in the tries before the new owner seals them. Entries that can never
 * succeed (undecodable, wrong supplier, bad hash) are acknowledged, deleted and counted as
 * malformed. A relay hash that is not SHA-256 of the
 * relay bytes counts as malformed too: it would put a leaf under a key the chain cannot prove.
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import { InvalidInputError, RelayMinerError } from '../core/index.js';
import { decodeRelay } from '../protocol/index.js';
import { ringSignatureChallenge } from '../rings/index.js';
import { decodeMinedRelayMessage, type KeyBuilder, type MinedRelayMessage } from '../transport/index.js';
import { SmstTreeSealedError } from './errors.js';
import { SESSION_DEDUP_ADD } from './lua/session-scripts.js';
import {
  SessionSnapshotCorruptError,
  TERMINAL_STATES,
  type SessionIdentity,
  type SessionStore,
} from './session-store.js';
import type { SessionTrie } from './smst-redis-store.js';

export interface RelayConsumerConfig {
  /** Supplier operator address whose stream this consumer reads. */
  supplier: string;
  /** Consumer name inside the group; unique per miner replica. */
  consumer_name: string;
  /** COUNT of XREADGROUP and XAUTOCLAIM. */
  batch_size?: number;
  /** BLOCK of XREADGROUP; bounds how long stop() waits for an idle read. */
  block_ms?: number;
  /** Pending entries idle this long are taken over with XAUTOCLAIM. */
  claim_idle_timeout_ms?: number;
  /** Time between XAUTOCLAIM passes (one also runs at start). */
  reclaim_interval_ms?: number;
  /** TTL of the per-session dedup sets of relay hashes. */
  dedup_ttl_seconds?: number;
}

export const DEFAULT_RELAY_CONSUMER_CONFIG = Object.freeze({
  batch_size: 1_000,
  block_ms: 1_000,
  claim_idle_timeout_ms: 60_000,
  reclaim_interval_ms: 30_000,
  dedup_ttl_seconds: 300,
});

/** What happened to the relays of one session in one batch. */
export interface SessionBatchResult {
  session_id: string;
  service_id: string;
  application_address: string;
  session_start_height: number;
  session_end_height: number;
  /** New relays: in the trie, the dedup set and the counters. */
  inserted: number;
  /** Compute units of the inserted relays. */
  inserted_compute_units: bigint;
  /** Relays already seen (dedup set, or twice in the batch). */
  duplicates: number;
  /** Relays dropped because the session is terminal or its trie sealed. */
  sealed: number;
  /** Entries naming this session that were invalid (wrong supplier, bad hash, …). */
  malformed: number;
  /** Relays left pending after a failure that may pass; they come back through XAUTOCLAIM. */
  retried: number;
  /** True when this batch created the session snapshot. */
  created: boolean;
}

export interface RelayBatchResult {
  supplier: string;
  /** True for a batch taken over with XAUTOCLAIM. */
  reclaimed: boolean;
  /** Stream entries in the batch. */
  entries: number;
  /** Entries acknowledged and deleted. */
  acked: number;
  /** Every malformed entry, with or without a readable session. */
  malformed: number;
  sessions: SessionBatchResult[];
}

export interface RelayConsumerDeps {
  /** Shared connection for acks, scripts and reclaim; the blocking reads use a duplicate of it. */
  redis: Redis;
  keys: KeyBuilder;
  log: Logger;
  sessions: SessionStore;
  /** The supplier's trie of a session, opened (resumed) on first use and shared with the lifecycle. */
  trie: (sessionId: string) => Promise<SessionTrie>;
  registry: Registry;
  /** Called after each batch was acknowledged. */
  onBatch?: (result: RelayBatchResult) => void | Promise<void>;
}

export type ConsumedResult = 'inserted' | 'duplicate' | 'session_sealed' | 'malformed' | 'retry';

export interface RelayConsumerMetrics {
  consumed: Counter<'result'>;
  reclaimed: Counter;
  lag: Gauge;
}

/** A Redis command of the relay consumer failed; the consumer retries it itself. */
export class RelayConsumerError extends RelayMinerError {
  constructor(what: string, opts: { cause?: unknown } = {}) {
    const detail = opts.cause instanceof Error ? `: ${opts.cause.message}` : '';
    super('RELAY_CONSUMER_FAILED', `relay consumer: ${what} failed${detail}`, { ...opts, retryable: true });
  }
}

interface MetricsEntry {
  metrics: RelayConsumerMetrics;
  consumers: Set<SupplierRelayConsumer>;
}

const metricsByRegistry = new WeakMap<Registry, MetricsEntry>();

/** The consumer series of a registry, created on first use and shared by every consumer on it. */
function metricsFor(registry: Registry): MetricsEntry {
  let entry = metricsByRegistry.get(registry);
  if (entry === undefined) {
    const consumers = new Set<SupplierRelayConsumer>();
    const registers = [registry];
    entry = {
      consumers,
      metrics: {
        consumed: new Counter({
          name: 'ha_miner_relays_consumed_total',
          help: 'Relay stream entries handled, by result',
          labelNames: ['result'] as const,
          registers,
        }),
        reclaimed: new Counter({
          name: 'ha_miner_relays_reclaimed_total',
          help: 'Pending relay stream entries taken over with XAUTOCLAIM',
          registers,
        }),
        lag: new Gauge({
          name: 'ha_miner_stream_lag',
          help: 'Relay stream entries not yet acknowledged, summed over the streams this replica consumes',
          registers,
          collect() {
            let sum = 0;
            for (const c of consumers) sum += c.streamLength;
            this.set(sum);
          },
        }),
      },
    };
    metricsByRegistry.set(registry, entry);
  }
  return entry;
}

/** A raw stream entry: id and field/value list. */
type RawEntry = [Buffer, Buffer[]];

interface ValidRelay {
  id: string;
  hash: Uint8Array;
  /** Member of the dedup set: the request's ring-signature challenge, else the relay hash. */
  key: Uint8Array;
  bytes: Uint8Array;
  cupr: bigint;
}

interface SessionGroup {
  identity: SessionIdentity;
  relays: ValidRelay[];
  malformed: string[];
}

const MAX_INT64 = (1n << 63n) - 1n;
const DATA_FIELD = 'data';

function sha256(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(bytes).digest());
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

function toBuffer(b: Uint8Array): Buffer {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function positiveInt(what: string, v: number): number {
  if (!Number.isSafeInteger(v) || v <= 0)
    throw new InvalidInputError(what, `must be a positive integer, got ${v}`);
  return v;
}

export class SupplierRelayConsumer {
  private lastStreamLength = 0;

  private readonly supplier: string;
  private readonly consumerName: string;
  private readonly stream: string;
  private readonly group: string;
  private readonly batchSize: number;
  private readonly blockMs: number;
  private readonly idleMs: number;
  private readonly reclaimEveryMs: number;
  private readonly dedupTtl: number;
  private readonly metrics: RelayConsumerMetrics;
  private readonly consumers: Set<SupplierRelayConsumer>;
  private readonly knownApps = new Set<string>();
  private readonly knownServices = new Set<string>();
  private readonly log: Logger;

  private blocking: Redis | undefined;
  private running = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  /** Set by drained(): the next loop turn reclaims pending entries whatever their idle time. */
  private reclaimSoon = false;
  private isCaughtUp = false;
  private resolveCaughtUp: (() => void) | undefined;
  private readonly caughtUpPromise: Promise<void>;

  constructor(
    private readonly deps: RelayConsumerDeps,
    cfg: RelayConsumerConfig,
  ) {
    const d = DEFAULT_RELAY_CONSUMER_CONFIG;
    this.log = deps.log.child({ component: 'relay_consumer' });
    this.supplier = cfg.supplier;
    this.stream = deps.keys.relayStream(cfg.supplier);
    this.group = deps.keys.consumerGroup();
    if (typeof cfg.consumer_name !== 'string' || cfg.consumer_name === '' || /\s/.test(cfg.consumer_name)) {
      throw new InvalidInputError('consumer name', 'must be non-empty, without spaces');
    }
    this.consumerName = cfg.consumer_name;
    this.batchSize = positiveInt('relay consumer batch_size', cfg.batch_size ?? d.batch_size);
    this.blockMs = positiveInt('relay consumer block_ms', cfg.block_ms ?? d.block_ms);
    this.idleMs = positiveInt('claim_idle_timeout_ms', cfg.claim_idle_timeout_ms ?? d.claim_idle_timeout_ms);
    this.reclaimEveryMs = positiveInt(
      'reclaim_interval_ms',
      cfg.reclaim_interval_ms ?? d.reclaim_interval_ms,
    );
    this.dedupTtl = positiveInt('dedup_ttl_seconds', cfg.dedup_ttl_seconds ?? d.dedup_ttl_seconds);
    const m = metricsFor(deps.registry);
    this.metrics = m.metrics;
    this.consumers = m.consumers;
    this.caughtUpPromise = new Promise((resolve) => (this.resolveCaughtUp = resolve));
  }

  get isRunning(): boolean {
    return this.running;
  }

  /**
   * Resolves once the backlog found at start is handled (first reclaim pass, then a read shorter
   * than a batch), or when the consumer stops.
   */
  caughtUp(): Promise<void> {
    return this.caughtUpPromise;
  }

  /**
   * Resolves true once every entry that was in the stream when called is handled (acknowledged
   * and deleted: in the trie, a duplicate, sealed or malformed), false at the deadline. The claim
   * waits for it before sealing, so relays published before the claim window opened but not yet
   * read (consumer lag, a batch left pending by a failure) are in the trie it seals. Entries left
   * pending by a failed batch are taken again at once instead of after the idle timeout.
   */
  async drained(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    const newest = (await this.deps.redis.xrevrange(this.stream, '+', '-', 'COUNT', 1))[0]?.[0];
    if (newest === undefined) return true;
    for (let polls = 0; ; polls++) {
      const left = await this.deps.redis.xrange(this.stream, '-', newest, 'COUNT', 1);
      if (left.length === 0) return true;
      if (Date.now() >= deadline || !this.running) return false;
      // Still there after a few polls: a failed batch left it pending; have it reclaimed now.
      if (polls === 4) {
        this.reclaimSoon = true;
        this.wake?.();
      }
      await new Promise((res) => setTimeout(res, 25));
    }
  }

  private markCaughtUp(): void {
    this.isCaughtUp = true;
    this.resolveCaughtUp?.();
  }

  /** XLEN of the stream at the last acknowledgement or reclaim pass: entries not yet acknowledged. */
  get streamLength(): number {
    return this.lastStreamLength;
  }

  /** Creates the group (MKSTREAM) if needed, takes over idle pending entries, then reads in the background. */
  async start(): Promise<void> {
    if (this.loop !== undefined) return;
    await this.ensureGroup();
    const blocking = this.deps.redis.duplicate();
    blocking.on('error', (err: unknown) => {
      this.log.debug({ err: errorMessage(err) }, 'relay stream read connection error');
    });
    this.blocking = blocking;
    this.running = true;
    this.consumers.add(this);
    this.loop = this.run();
  }

  /**
   * Stops reading: the batch in hand is finished (and acknowledged), nothing further is read.
   * Entries delivered but not processed stay pending for XAUTOCLAIM.
   */
  async stop(): Promise<void> {
    this.markCaughtUp();
    if (this.loop === undefined) return;
    this.running = false;
    this.wake?.();
    await this.loop;
    this.loop = undefined;
    this.consumers.delete(this);
    const blocking = this.blocking;
    this.blocking = undefined;
    if (blocking !== undefined) {
      try {
        await blocking.quit();
      } catch {
        blocking.disconnect();
      }
    }
  }

  private async ensureGroup(): Promise<void> {
    try {
      await this.deps.redis.xgroup('CREATE', this.stream, this.group, '0', 'MKSTREAM');
    } catch (err) {
      if (errorMessage(err).startsWith('BUSYGROUP')) return;
      throw new RelayConsumerError('XGROUP CREATE', { cause: err });
    }
  }

  private async run(): Promise<void> {
    let nextReclaim = 0;
    let backoffMs = 100;
    let firstPass = true;
    while (this.running) {
      try {
        if (Date.now() >= nextReclaim || this.reclaimSoon) {
          // This consumer starts when its replica takes the supplier's lease: whatever is pending
          // then belongs to an owner that is gone (or handing over, and the dedup set absorbs a
          // relay both handle), so the first pass takes it at once instead of after the idle time.
          const now = firstPass || this.reclaimSoon;
          this.reclaimSoon = false;
          await this.reclaim(now ? 0 : this.idleMs);
          firstPass = false;
          nextReclaim = Date.now() + this.reclaimEveryMs;
        }
        if (!this.running) break;
        const catchingUp = !this.isCaughtUp;
        const entries = await this.read(!catchingUp);
        if (entries.length > 0) await this.processBatch(entries, false);
        if (catchingUp && entries.length < this.batchSize) this.markCaughtUp();
        backoffMs = 100;
      } catch (caught) {
        if (!this.running) break;
        let err = caught;
        if (errorMessage(err).includes('NOGROUP')) {
          this.log.warn({ supplier: this.supplier }, 'relay consumer group missing; creating it again');
          try {
            await this.ensureGroup();
            continue;
          } catch (e) {
            err = e;
          }
        }
        this.log.warn({ supplier: this.supplier, err: errorMessage(err) }, 'relay stream read failed');
        await this.sleep(backoffMs);
        backoffMs = Math.min(backoffMs * 2, 5_000);
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done(): void {
        clearTimeout(t);
        resolve();
      }
      this.wake = done;
    });
  }

  /** XAUTOCLAIM passes over the whole pending list (bounded), processing each chunk. */
  private async reclaim(minIdleMs: number): Promise<void> {
    this.lastStreamLength = await this.deps.redis.xlen(this.stream);
    let cursor = '0-0';
    // Every pass moves the cursor forward; the bound only guards against a list that keeps growing.
    for (let pass = 0; pass < 1_000 && this.running; pass++) {
      const reply = (await this.deps.redis.callBuffer(
        'XAUTOCLAIM',
        this.stream,
        this.group,
        this.consumerName,
        String(minIdleMs),
        cursor,
        'COUNT',
        String(this.batchSize),
      )) as [Buffer, RawEntry[] | null, ...unknown[]];
      const entries = (reply[1] ?? []).filter((e): e is RawEntry => Array.isArray(e) && Array.isArray(e[1]));
      if (entries.length > 0) {
        this.metrics.reclaimed.inc(entries.length);
        this.log.info({ supplier: this.supplier, entries: entries.length }, 'reclaimed idle relay entries');
        await this.processBatch(entries, true);
      }
      cursor = reply[0].toString('latin1');
      if (cursor === '0-0') return;
    }
  }

  /** XREADGROUP of new entries; `block` = wait up to block_ms for one. */
  private async read(block: boolean): Promise<RawEntry[]> {
    const blocking = this.blocking;
    if (blocking === undefined) return [];
    const wait = block ? ['BLOCK', String(this.blockMs)] : [];
    const reply = (await blocking.callBuffer(
      'XREADGROUP',
      'GROUP',
      this.group,
      this.consumerName,
      'COUNT',
      String(this.batchSize),
      ...wait,
      'STREAMS',
      this.stream,
      '>',
    )) as [Buffer, RawEntry[]][] | null;
    if (reply === null) return [];
    return reply.flatMap(([, entries]) => entries);
  }

  /** Reads one entry: a relay of this supplier, or why it can never be processed. */
  private parseEntry(fields: Buffer[]): MinedRelayMessage | string {
    let data: Buffer | undefined;
    for (let i = 0; i + 1 < fields.length; i += 2) {
      if (fields[i]!.toString('latin1') === DATA_FIELD) data = fields[i + 1];
    }
    if (data === undefined) return 'no data field';
    let m: MinedRelayMessage;
    try {
      m = decodeMinedRelayMessage(data);
    } catch (err) {
      return `undecodable: ${errorMessage(err)}`;
    }
    if (m.supplier_operator_address !== this.supplier) return 'relay of another supplier';
    try {
      this.deps.keys.minerDedupSession(m.session_id);
    } catch {
      return 'invalid session id';
    }
    return m;
  }

  /** Checks a decoded relay of a known session; a string says why it is malformed. */
  private validRelay(id: string, m: MinedRelayMessage): ValidRelay | string {
    if (m.service_id === '' || m.application_address === '') return 'missing service or application';
    if (m.session_end_height < m.session_start_height || m.session_start_height < 0)
      return 'bad session heights';
    if (m.relay_bytes.length === 0) return 'empty relay';
    if (m.compute_units_per_relay > MAX_INT64) return 'compute units per relay out of range';
    const hash = sha256(m.relay_bytes);
    if (m.relay_hash.length > 0 && !equalBytes(m.relay_hash, hash))
      return 'relay hash does not match the relay';
    return {
      id,
      hash,
      key: requestIdentity(m.relay_bytes) ?? hash,
      bytes: m.relay_bytes,
      cupr: m.compute_units_per_relay,
    };
  }

  private async processBatch(entries: RawEntry[], reclaimed: boolean): Promise<void> {
    const ack: string[] = [];
    let malformed = 0;
    const groups = new Map<string, SessionGroup>();
    for (const [rawId, fields] of entries) {
      const id = rawId.toString('latin1');
      const m = this.parseEntry(fields);
      if (typeof m === 'string') {
        malformed++;
        ack.push(id);
        this.log.debug({ supplier: this.supplier, entry: id, reason: m }, 'dropping a malformed relay entry');
        continue;
      }
      const r = this.validRelay(id, m);
      let g = groups.get(m.session_id);
      // The snapshot identity comes from the first valid relay of the session in the batch.
      if (g === undefined || (g.relays.length === 0 && typeof r !== 'string')) {
        g = {
          identity: {
            session_id: m.session_id,
            supplier_operator_address: this.supplier,
            service_id: m.service_id,
            application_address: m.application_address,
            session_start_height: m.session_start_height,
            session_end_height: m.session_end_height,
          },
          relays: g?.relays ?? [],
          malformed: g?.malformed ?? [],
        };
        groups.set(m.session_id, g);
      }
      if (typeof r === 'string') {
        malformed++;
        g.malformed.push(id);
        ack.push(id);
        this.log.debug(
          { supplier: this.supplier, session_id: m.session_id, entry: id, reason: r },
          'dropping a malformed relay entry',
        );
      } else {
        g.relays.push(r);
      }
    }

    const sessions: SessionBatchResult[] = [];
    for (const g of groups.values()) {
      const res = await this.handleSession(g);
      if (res.ack) for (const r of g.relays) ack.push(r.id);
      sessions.push(res.result);
    }
    await this.recordKnown(groups);

    const acked = await this.ack(ack);
    const totals = { inserted: 0, duplicate: 0, session_sealed: 0, retry: 0 };
    for (const s of sessions) {
      totals.inserted += s.inserted;
      totals.duplicate += s.duplicates;
      totals.session_sealed += s.sealed;
      totals.retry += s.retried;
    }
    for (const [result, n] of Object.entries(totals)) if (n > 0) this.metrics.consumed.inc({ result }, n);
    if (malformed > 0) this.metrics.consumed.inc({ result: 'malformed' }, malformed);

    const onBatch = this.deps.onBatch;
    if (onBatch !== undefined) {
      try {
        await onBatch({
          supplier: this.supplier,
          reclaimed,
          entries: entries.length,
          acked,
          malformed,
          sessions,
        });
      } catch (err) {
        this.log.warn({ supplier: this.supplier, err: errorMessage(err) }, 'relay batch callback failed');
      }
    }
  }

  /** Steps 1–5 of the file header for one session; `ack` says whether its relays may be acknowledged. */
  private async handleSession(g: SessionGroup): Promise<{ ack: boolean; result: SessionBatchResult }> {
    const sid = g.identity.session_id;
    const result: SessionBatchResult = {
      session_id: sid,
      service_id: g.identity.service_id,
      application_address: g.identity.application_address,
      session_start_height: g.identity.session_start_height,
      session_end_height: g.identity.session_end_height,
      inserted: 0,
      inserted_compute_units: 0n,
      duplicates: 0,
      sealed: 0,
      malformed: g.malformed.length,
      retried: 0,
      created: false,
    };
    if (g.relays.length === 0) return { ack: true, result };
    const sealed = (): { ack: boolean; result: SessionBatchResult } => {
      result.duplicates = 0;
      result.sealed = g.relays.length;
      return { ack: true, result };
    };
    try {
      if (await this.isTerminal(sid)) return sealed();
      const st = await this.deps.trie(sid);
      if (st.store.isSealed) return sealed();

      const unique = new Map<string, ValidRelay>();
      for (const r of g.relays) {
        const k = toBuffer(r.key).toString('latin1');
        if (unique.has(k)) result.duplicates++;
        else unique.set(k, r);
      }
      const candidates = [...unique.values()];
      const dedupKey = this.deps.keys.minerDedupSession(sid);
      let seen: number[];
      try {
        seen = await this.deps.redis.smismember(dedupKey, ...candidates.map((r) => toBuffer(r.key)));
      } catch (err) {
        throw new RelayConsumerError('SMISMEMBER of the dedup set', { cause: err });
      }
      const fresh = candidates.filter((_, i) => seen[i] !== 1);
      result.duplicates += candidates.length - fresh.length;
      if (fresh.length === 0) return { ack: true, result };

      if (!(await this.insert(sid, st, fresh))) return sealed();
      await st.store.checkpoint();

      const added = await SESSION_DEDUP_ADD.run(
        this.deps.redis,
        [dedupKey],
        [this.dedupTtl, ...fresh.map((r) => toBuffer(r.key))],
      );
      fresh.forEach((r, i) => {
        if (added[i] === 1) {
          result.inserted++;
          result.inserted_compute_units += r.cupr;
        } else {
          result.duplicates++;
        }
      });

      // The trie is the source of truth: a snapshot failure is logged and the relays still acknowledged.
      try {
        result.created = await this.deps.sessions.ensure(g.identity);
        if (result.inserted > 0) {
          await this.deps.sessions.addRelays(
            this.supplier,
            sid,
            result.inserted,
            result.inserted_compute_units,
          );
        }
      } catch (err) {
        this.log.warn(
          { supplier: this.supplier, session_id: sid, err: errorMessage(err) },
          'updating the session snapshot failed',
        );
      }
      return { ack: true, result };
    } catch (err) {
      if (err instanceof SmstTreeSealedError) return sealed();
      result.inserted = 0;
      result.inserted_compute_units = 0n;
      result.duplicates = 0;
      result.retried = g.relays.length;
      this.log.warn(
        { supplier: this.supplier, session_id: sid, relays: g.relays.length, err: errorMessage(err) },
        'relays left pending after a failure; they are retried after the claim idle timeout',
      );
      return { ack: false, result };
    }
  }

  private async isTerminal(sessionId: string): Promise<boolean> {
    try {
      const snap = await this.deps.sessions.get(this.supplier, sessionId);
      return snap !== undefined && TERMINAL_STATES.has(snap.state);
    } catch (err) {
      if (err instanceof SessionSnapshotCorruptError) {
        this.log.warn({ supplier: this.supplier, session_id: sessionId }, 'session snapshot unreadable');
        return false;
      }
      throw err;
    }
  }

  /**
   * Updates and commits the relays in one run of the trie's queue, so a seal by the lifecycle
   * lands wholly before or wholly after them. False when the trie was sealed first: the leaves this
   * call added are then deleted again, which restores the sealed root in memory (the trie's root
   * depends only on its set of leaves), so later proofs match the claim.
   */
  private async insert(sessionId: string, st: SessionTrie, relays: readonly ValidRelay[]): Promise<boolean> {
    const { trie } = st;
    const before = relays.map((r) => trie.get(r.hash));
    const updates = relays.map((r) => trie.update(r.hash, r.bytes, r.cupr));
    const commit = trie.commit();
    const [b, u, c] = await Promise.allSettled([Promise.all(before), Promise.all(updates), commit]);
    if (b.status === 'rejected') throw b.reason;
    if (u.status === 'rejected') throw u.reason;
    if (c.status === 'fulfilled') return true;
    if (!(c.reason instanceof SmstTreeSealedError)) throw c.reason;
    const added = relays.filter((_, i) => b.value[i] === null);
    const undo = await Promise.allSettled(added.map((r) => trie.delete(r.hash)));
    if (undo.some((x) => x.status === 'rejected')) {
      this.log.error(
        { supplier: this.supplier, session_id: sessionId },
        'could not remove relays from a trie sealed concurrently; its in-memory root differs from the claim',
      );
    }
    return false;
  }

  /** Adds apps and services seen for the first time in this process to the known sets (best effort). */
  private async recordKnown(groups: Map<string, SessionGroup>): Promise<void> {
    const apps: string[] = [];
    const services: string[] = [];
    for (const g of groups.values()) {
      if (g.relays.length === 0) continue;
      const { application_address: app, service_id: svc } = g.identity;
      if (!this.knownApps.has(app)) apps.push(app);
      if (!this.knownServices.has(svc)) services.push(svc);
    }
    if (apps.length === 0 && services.length === 0) return;
    const pipe = this.deps.redis.pipeline();
    if (apps.length > 0) pipe.sadd(this.deps.keys.knownSet('applications'), ...apps);
    if (services.length > 0) pipe.sadd(this.deps.keys.knownSet('services'), ...services);
    try {
      const replies = await pipe.exec();
      if (replies?.every(([err]) => err === null)) {
        for (const a of apps) this.knownApps.add(a);
        for (const s of services) this.knownServices.add(s);
      }
    } catch (err) {
      this.log.debug({ err: errorMessage(err) }, 'recording known applications and services failed');
    }
  }

  /** XACK + XDEL (+ XLEN for the lag gauge) in one MULTI; returns how many entries were acknowledged. */
  private async ack(ids: readonly string[]): Promise<number> {
    if (ids.length === 0) return 0;
    const tx = this.deps.redis.multi();
    tx.xack(this.stream, this.group, ...ids);
    tx.xdel(this.stream, ...ids);
    tx.xlen(this.stream);
    try {
      const replies = await tx.exec();
      if (replies === null) throw new Error('transaction aborted');
      for (const [err] of replies) if (err !== null) throw err;
      this.lastStreamLength = Number(replies[2]![1]);
      return Number(replies[0]![1]);
    } catch (err) {
      // Left pending: the entries come back through XAUTOCLAIM and the dedup set absorbs them.
      this.log.warn(
        { supplier: this.supplier, entries: ids.length, err: errorMessage(err) },
        'acknowledging relay entries failed',
      );
      return 0;
    }
  }
}

/** The ring-signature challenge of the relay's request, or null when it cannot be read. */
function requestIdentity(relayBytes: Uint8Array): Uint8Array | null {
  const relay = decodeRelay(relayBytes);
  if (!relay.ok) return null;
  const sig = relay.value.req?.meta?.signature;
  return sig === undefined ? null : ringSignatureChallenge(sig);
}
