/**
 * The per-block session state machine (miner.md §5) for the suppliers this replica owns, and the
 * pieces the claimer, prover and inclusion reconciler share: the chain queries they need, window
 * heights with the params at the right height, and access to the session tries.
 *
 * A pass runs once per block; blocks that arrive while a pass runs are coalesced (only the newest
 * is processed next). Each pass reads the owned suppliers' non-terminal sessions from Redis (Redis
 * wins over memory), decides the §5 transitions, writes the new state with a compare-and-set
 * BEFORE queuing any job, publishes the relay-meter cleanup `"{session}|{supplier}"` when a session
 * enters `claiming`, and starts one claim job per (supplier, session end height) group and one
 * proof job likewise, bounded by `max_concurrent_transitions`.
 *
 * Deliberate difference from upstream (§7): the first pass after start-up or after a supplier is
 * taken over restarts the sessions left in `claiming`/`proving` without a tx hash while their
 * window is still open (upstream lets them time out). Empty trees are skipped by the claimer.
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { RelayMinerError } from '../core/index.js';
import type { ChainQueryClient } from '../chain/index.js';
import { sessionWindows, type SessionParams, type SessionWindows, type pb } from '../protocol/index.js';
import type { KeyBuilder } from '../transport/index.js';
import type { MinerLedger } from './ledger.js';
import type { MinerLifecycleMetrics } from './miner-metrics.js';
import type { SessionSnapshot, SessionState, SessionStore } from './session-store.js';
import { SmstRedisStore, type SessionTrie, type SmstRedisStoreConfig } from './smst-redis-store.js';

/** The chain queries the miner's session work needs (ChainQueryClient satisfies it). */
export type MinerChain = Pick<
  ChainQueryClient,
  | 'getSession'
  | 'getSharedParams'
  | 'getSharedParamsAtHeight'
  | 'getProofParams'
  | 'getClaim'
  | 'getAllClaimsBySupplier'
  | 'getComputeUnitsPerRelayAtHeight'
  | 'getRelayMiningDifficultyAtHeight'
  | 'getBlock'
>;

/** The session-math view of `pocket.shared.Params`. */
export function sessionParamsFromPb(p: pb.sharedParams.Params): SessionParams {
  return {
    num_blocks_per_session: Number(p.numBlocksPerSession),
    grace_period_end_offset_blocks: Number(p.gracePeriodEndOffsetBlocks),
    claim_window_open_offset_blocks: Number(p.claimWindowOpenOffsetBlocks),
    claim_window_close_offset_blocks: Number(p.claimWindowCloseOffsetBlocks),
    proof_window_open_offset_blocks: Number(p.proofWindowOpenOffsetBlocks),
    proof_window_close_offset_blocks: Number(p.proofWindowCloseOffsetBlocks),
    session_grid_anchor_height: Number(p.sessionGridAnchorHeight),
    session_number_at_anchor: Number(p.sessionNumberAtAnchor),
  };
}

/**
 * Window heights of a session: from the live shared params while the session's end height is at
 * or above the current height, from ParamsAtHeight(end) once it has ended (cached: history is
 * immutable for past heights).
 */
export class SessionWindowResolver {
  private readonly atEnd = new Map<number, Promise<SessionWindows>>();
  /** Live params, read once per current height. */
  private live: { height: number; params: Promise<pb.sharedParams.Params> } | undefined;
  private static readonly MAX_CACHED = 1_024;

  constructor(private readonly chain: Pick<MinerChain, 'getSharedParams' | 'getSharedParamsAtHeight'>) {}

  async windows(sessionEndHeight: number, currentHeight: number): Promise<SessionWindows> {
    if (sessionEndHeight >= currentHeight) {
      if (this.live === undefined || this.live.height !== currentHeight) {
        const params = this.chain.getSharedParams();
        const entry = { height: currentHeight, params };
        params.catch(() => {
          if (this.live === entry) this.live = undefined;
        });
        this.live = entry;
      }
      return sessionWindows(sessionParamsFromPb(await this.live.params), sessionEndHeight);
    }
    let cached = this.atEnd.get(sessionEndHeight);
    if (cached === undefined) {
      cached = this.chain
        .getSharedParamsAtHeight(sessionEndHeight)
        .then((p) => sessionWindows(sessionParamsFromPb(p), sessionEndHeight));
      cached.catch(() => this.atEnd.delete(sessionEndHeight));
      if (this.atEnd.size >= SessionWindowResolver.MAX_CACHED) {
        const oldest = this.atEnd.keys().next();
        if (!oldest.done) this.atEnd.delete(oldest.value);
      }
      this.atEnd.set(sessionEndHeight, cached);
    }
    return cached;
  }
}

/** What the claimer and prover need from the session tries. */
export interface SessionTrees {
  /** Commits, flushes and seals the trie for its claim; returns the 48-byte root. */
  seal(supplier: string, sessionId: string): Promise<Uint8Array>;
  /** The root sealed for the claim, or undefined when none was stored. */
  claimedRoot(supplier: string, sessionId: string): Promise<Uint8Array | undefined>;
  /** The gob-encoded compact closest proof for `path` on the sealed trie. */
  proveClosest(supplier: string, sessionId: string, path: Uint8Array): Promise<Uint8Array>;
  /** Deletes every key of the trie. */
  destroy(supplier: string, sessionId: string): Promise<void>;
}

/** A pass left at least one supplier or session undecided; the next block retries it. */
export class LifecyclePassError extends RelayMinerError {
  constructor(what: string, opts: { cause?: unknown } = {}) {
    super('LIFECYCLE_PASS_FAILED', what, { ...opts, retryable: true });
  }
}

export class SessionTreeError extends RelayMinerError {
  constructor(what: string, opts: { cause?: unknown } = {}) {
    super('SESSION_TREE_FAILED', what, { ...opts, retryable: true });
  }
}

/**
 * Session tries in Redis (SmstRedisStore), opened once per process and shared with whoever
 * inserts relays (`trie()`), so sealing sees every relay committed in memory.
 */
export class RedisSessionTrees implements SessionTrees {
  private readonly open = new Map<string, Promise<SessionTrie>>();

  constructor(
    private readonly deps: { redis: Redis; keys: KeyBuilder },
    private readonly cfg: Omit<SmstRedisStoreConfig, 'supplier' | 'session_id'> = {},
  ) {}

  /** The trie of a session, opened (resumed from Redis) on first use. */
  trie(supplier: string, sessionId: string): Promise<SessionTrie> {
    const id = `${supplier}|${sessionId}`;
    let t = this.open.get(id);
    if (t === undefined) {
      t = SmstRedisStore.open(this.deps, { ...this.cfg, supplier, session_id: sessionId });
      t.catch(() => this.open.delete(id));
      this.open.set(id, t);
    }
    return t;
  }

  /** Forgets the in-memory trie (a released supplier); Redis is untouched. */
  forget(supplier: string, sessionId: string): void {
    this.open.delete(`${supplier}|${sessionId}`);
  }

  async seal(supplier: string, sessionId: string): Promise<Uint8Array> {
    const { trie, store } = await this.trie(supplier, sessionId);
    if (store.isSealed) return trie.root();
    await trie.commit();
    return store.seal();
  }

  async claimedRoot(supplier: string, sessionId: string): Promise<Uint8Array | undefined> {
    let v: Buffer | null;
    try {
      v = await this.deps.redis.getBuffer(this.deps.keys.smstRoot(supplier, sessionId));
    } catch (err) {
      throw new SessionTreeError('reading the claimed root failed', { cause: err });
    }
    return v === null ? undefined : new Uint8Array(v);
  }

  async proveClosest(supplier: string, sessionId: string, path: Uint8Array): Promise<Uint8Array> {
    const { trie } = await this.trie(supplier, sessionId);
    return trie.proveClosestBytes(path);
  }

  async destroy(supplier: string, sessionId: string): Promise<void> {
    const open = this.open.get(`${supplier}|${sessionId}`);
    // An open trie drops its buffers too; otherwise a bare store deletes the keys without loading.
    const store = open
      ? (await open).store
      : new SmstRedisStore(this.deps, { ...this.cfg, supplier, session_id: sessionId });
    await store.destroy();
    this.forget(supplier, sessionId);
  }
}

/** One group of sessions of a supplier that share a session end height (one tx). */
export interface SessionGroup {
  supplier: string;
  sessionEndHeight: number;
  sessions: SessionSnapshot[];
  windows: SessionWindows;
  /** Height of the block whose pass queued the job. */
  height: number;
}

/** A job returns the ids of sessions it could not decide (a fault); the next pass retries them. */
export interface ClaimJobRunner {
  runClaimGroup(group: SessionGroup): Promise<string[]>;
}

export interface ProofJobRunner {
  runProofGroup(group: SessionGroup): Promise<string[]>;
}

export interface SessionLifecycleDeps {
  store: SessionStore;
  windows: SessionWindowResolver;
  claimer: ClaimJobRunner;
  prover: ProofJobRunner;
  ledger: MinerLedger;
  keys: KeyBuilder;
  /** Publishes `"{session}|{supplier}"` on the meter cleanup channel. */
  publishMeterCleanup: (member: string) => Promise<void>;
  /** Suppliers this replica owns right now. */
  suppliers: () => Iterable<string>;
  log: Logger;
  metrics: MinerLifecycleMetrics;
}

export interface SessionLifecycleConfig {
  /** Jobs (claim/proof groups) running at once (upstream session_lifecycle.max_concurrent_transitions). */
  max_concurrent_transitions?: number;
}

const NON_TERMINAL: readonly SessionState[] = ['active', 'claiming', 'claimed', 'proving'];

interface Decision {
  to: SessionState;
  job?: 'claim' | 'proof';
  lost?: 'claim_expired' | 'proof_missing';
}

/** The §5 transition table; `undefined` = no change. */
export function decideTransition(state: SessionState, w: SessionWindows, h: number): Decision | undefined {
  switch (state) {
    case 'active':
      if (h >= w.claim_window_close_height) return { to: 'claim_window_closed', lost: 'claim_expired' };
      if (h >= w.claim_window_open_height) return { to: 'claiming', job: 'claim' };
      return undefined;
    case 'claiming':
      if (h >= w.claim_window_close_height) return { to: 'claim_window_closed', lost: 'claim_expired' };
      return undefined;
    case 'claimed':
      if (h >= w.proof_window_close_height) return { to: 'proof_window_closed', lost: 'proof_missing' };
      if (h >= w.proof_window_open_height) return { to: 'proving', job: 'proof' };
      return undefined;
    case 'proving':
      if (h >= w.proof_window_close_height) return { to: 'proof_window_closed', lost: 'proof_missing' };
      return undefined;
    default:
      return undefined;
  }
}

export class SessionLifecycle {
  private readonly maxConcurrent: number;
  private readonly log: Logger;
  private pending: { height: number; hash: Uint8Array } | undefined;
  private running: Promise<void> | undefined;
  private lastHeight = 0;
  /** Suppliers seen by a pass since start-up or their last release. */
  private readonly seen = new Set<string>();
  /** `{supplier}|{session}` with a job queued or running in this process. */
  private readonly inFlight = new Set<string>();
  /** `{supplier}|{session}` whose job hit a fault: restarted by the next pass while the window is open. */
  private readonly retryNext = new Set<string>();
  private readonly jobs = new Set<Promise<void>>();
  private readonly queue: (() => void)[] = [];
  private active = 0;

  constructor(
    private readonly deps: SessionLifecycleDeps,
    cfg: SessionLifecycleConfig = {},
  ) {
    const n = cfg.max_concurrent_transitions ?? 10;
    if (!Number.isSafeInteger(n) || n < 1) {
      throw new RelayMinerError(
        'MINER_CONFIG_INVALID',
        `session_lifecycle.max_concurrent_transitions: must be a positive integer, got ${n}`,
      );
    }
    this.maxConcurrent = n;
    this.log = deps.log.child({ component: 'session_lifecycle' });
  }

  /** Newest height a pass ran for. */
  get height(): number {
    return this.lastHeight;
  }

  /**
   * Runs a pass for this block, or, when one is running, remembers it as the next block to
   * process (replacing any older waiting block). Resolves when the passes have caught up; jobs
   * they queued may still run (see `idle()`). Never rejects: a failed pass is logged and counted.
   */
  onBlock(height: number, hash: Uint8Array): Promise<void> {
    if (this.pending !== undefined || this.running !== undefined) {
      this.deps.metrics.passes.inc({ outcome: 'coalesced' });
    }
    if (this.pending === undefined || height > this.pending.height) this.pending = { height, hash };
    this.running ??= this.drain();
    return this.running;
  }

  /** A supplier was released: its next pass (after a re-take) restarts interrupted jobs again. */
  release(supplier: string): void {
    this.seen.delete(supplier);
  }

  /** Resolves when no job is queued or running. */
  async idle(): Promise<void> {
    while (this.jobs.size > 0) await Promise.allSettled([...this.jobs]);
  }

  private async drain(): Promise<void> {
    try {
      while (this.pending !== undefined) {
        const b = this.pending;
        this.pending = undefined;
        if (b.height < this.lastHeight) continue;
        this.lastHeight = b.height;
        const end = this.deps.metrics.passDuration.startTimer();
        try {
          await this.pass(b.height);
          this.deps.metrics.passes.inc({ outcome: 'ok' });
        } catch (err) {
          this.deps.metrics.passes.inc({ outcome: 'error' });
          this.log.warn({ err, block_height: b.height }, 'session lifecycle pass failed; next block retries');
        } finally {
          end();
        }
      }
    } finally {
      this.running = undefined;
    }
  }

  /** One pass over every owned supplier; a supplier that fails does not hold back the others. */
  private async pass(h: number): Promise<void> {
    let failed: unknown;
    for (const supplier of [...this.deps.suppliers()]) {
      const takeover = !this.seen.has(supplier);
      try {
        await this.passSupplier(supplier, h, takeover);
        this.seen.add(supplier);
      } catch (err) {
        failed ??= err;
        this.log.warn({ err, supplier, block_height: h }, 'supplier pass failed; next block retries');
      }
    }
    if (failed !== undefined) throw new LifecyclePassError(`pass at height ${h} failed`, { cause: failed });
  }

  private async passSupplier(supplier: string, h: number, takeover: boolean): Promise<void> {
    const sessions = await this.deps.store.list(supplier, [...NON_TERMINAL]);
    const claims = new Map<number, SessionGroup>();
    const proofs = new Map<number, SessionGroup>();
    let failed: unknown;
    for (const s of sessions) {
      try {
        await this.decide(supplier, s, h, takeover, claims, proofs);
      } catch (err) {
        // One session's fault (a params query, Redis) must not hold back the others.
        failed ??= err;
        this.log.warn({ err, supplier, session_id: s.session_id, block_height: h }, 'session pass failed');
      }
    }
    for (const g of claims.values()) this.startJob(g, 'claim');
    for (const g of proofs.values()) this.startJob(g, 'proof');
    if (failed !== undefined) {
      throw new LifecyclePassError(`pass of a supplier at height ${h} failed`, { cause: failed });
    }
  }

  private async decide(
    supplier: string,
    s: SessionSnapshot,
    h: number,
    takeover: boolean,
    claims: Map<number, SessionGroup>,
    proofs: Map<number, SessionGroup>,
  ): Promise<void> {
    const w = await this.deps.windows.windows(s.session_end_height, h);
    const d = decideTransition(s.state, w, h);
    const id = `${supplier}|${s.session_id}`;
    if (d === undefined) {
      const retry = this.retryNext.delete(id);
      if ((takeover || retry) && !this.inFlight.has(id)) this.maybeRestart(s, w, h, claims, proofs);
      return;
    }
    const moved = await this.deps.store.transition(supplier, s.session_id, [s.state], d.to);
    if (!moved) return;
    this.deps.metrics.transitions.inc({ from: s.state, to: d.to });
    this.log.info(
      { supplier, session_id: s.session_id, block_height: h, from: s.state, to: d.to },
      'session state changed',
    );
    // Grouped at once: the job starts even if a bookkeeping write below fails.
    const next = { ...s, state: d.to };
    if (d.job === 'claim') addToGroup(claims, next, w, h);
    if (d.job === 'proof') addToGroup(proofs, next, w, h);
    if (d.to === 'claiming') await this.publishCleanup(supplier, s.session_id);
    if (d.lost !== undefined) {
      await this.deps.ledger.addRelays(supplier, s.session_id, `lost:${d.lost}`, BigInt(s.relay_count));
    }
  }

  private maybeRestart(
    s: SessionSnapshot,
    w: SessionWindows,
    h: number,
    claims: Map<number, SessionGroup>,
    proofs: Map<number, SessionGroup>,
  ): void {
    if (s.state === 'claiming' && s.claim_tx_hash === undefined && h < w.claim_window_close_height) {
      this.deps.metrics.restarts.inc({ phase: 'claim' });
      this.log.info({ supplier: s.supplier_operator_address, session_id: s.session_id }, 'restarting claim');
      addToGroup(claims, s, w, h);
    } else if (s.state === 'proving' && s.proof_tx_hash === undefined && h < w.proof_window_close_height) {
      this.deps.metrics.restarts.inc({ phase: 'proof' });
      this.log.info({ supplier: s.supplier_operator_address, session_id: s.session_id }, 'restarting proof');
      addToGroup(proofs, s, w, h);
    }
  }

  private async publishCleanup(supplier: string, sessionId: string): Promise<void> {
    try {
      await this.deps.publishMeterCleanup(this.deps.keys.meterMember(sessionId, supplier));
    } catch (err) {
      // The meter entry then ages out through its TTL; the claim must not wait for it.
      this.log.warn({ err, supplier, session_id: sessionId }, 'meter cleanup publish failed');
    }
  }

  private startJob(group: SessionGroup, kind: 'claim' | 'proof'): void {
    const ids = group.sessions.map((s) => `${group.supplier}|${s.session_id}`);
    for (const id of ids) this.inFlight.add(id);
    const job = (async () => {
      await this.acquire();
      try {
        const undecided =
          kind === 'claim'
            ? await this.deps.claimer.runClaimGroup(group)
            : await this.deps.prover.runProofGroup(group);
        for (const sessionId of undecided) this.retryNext.add(`${group.supplier}|${sessionId}`);
      } catch (err) {
        for (const id of ids) this.retryNext.add(id);
        this.log.error(
          { err, supplier: group.supplier, session_end_height: group.sessionEndHeight, job: kind },
          'session job failed; the next block retries it',
        );
      } finally {
        this.releaseSlot();
        for (const id of ids) this.inFlight.delete(id);
      }
    })();
    this.jobs.add(job);
    void job.finally(() => this.jobs.delete(job));
  }

  private acquire(): Promise<void> {
    if (this.active < this.maxConcurrent) {
      this.active++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.queue.push(resolve));
  }

  private releaseSlot(): void {
    const next = this.queue.shift();
    if (next !== undefined) next();
    else this.active--;
  }
}

function addToGroup(
  groups: Map<number, SessionGroup>,
  s: SessionSnapshot,
  w: SessionWindows,
  h: number,
): void {
  let g = groups.get(s.session_end_height);
  if (g === undefined) {
    g = {
      supplier: s.supplier_operator_address,
      sessionEndHeight: s.session_end_height,
      sessions: [],
      windows: w,
      height: h,
    };
    groups.set(s.session_end_height, g);
  }
  g.sessions.push(s);
}
