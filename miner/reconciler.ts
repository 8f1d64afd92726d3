/**
 * Inclusion reconciler (miner.md §6). A code-0 SYNC broadcast only means mempool admission, so the
 * messages of every submitted claim/proof tx are kept in Redis and, once per block, checked
 * against module state (AllClaims of the supplier, not the tx index): claim phase "included" = a
 * claim exists for the session; proof phase = the claim's status is VALIDATED.
 *
 * Storage, as upstream: hash `{base}:{miner}:rebroadcast:{phase}:{supplier}:{session_end}` (field
 * = session id, value = JSON `{m: message bytes (base64), h: submit height, t: latest tx hash,
 * o: original tx hash, s: service id, n: resend count}`), the group in
 * `{base}:{miner}:rebroadcast:{phase}:index` (member `{supplier}|{session_end}`), TTL 1 h. The
 * resend count is written after every attempt, so the cap holds across blocks and failover.
 *
 * Resend gate: resends < max_rebroadcasts, h < close − rebroadcast_safety_blocks and h ≥ threshold,
 * threshold = submit height + 1 when the original never got a tx hash, else the window midpoint
 * submit + ⌊(close − submit)/2⌋. Due messages of a group are re-signed into one new tx.
 *
 * Submission records `{base}:tx:track:{supplier}:{end}:{session}` (JSON, TTL 24 h) carry the
 * phase, tx hashes, heights and the reconciler's outcome.
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { RelayMinerError } from '../core/index.js';
import { ChainNotFoundError, type TxClient } from '../chain/index.js';
import { pb } from '../protocol/index.js';
import type { KeyBuilder, RebroadcastPhase } from '../transport/index.js';
import type { MinerChain, SessionWindowResolver } from './lifecycle.js';
import type { MinerLifecycleMetrics } from './miner-metrics.js';

export interface StoredMessage {
  sessionId: string;
  /** Protobuf MsgCreateClaim / MsgSubmitProof bytes. */
  msg: Uint8Array;
  submitHeight: number;
  /** Latest tx hash ('' when the original broadcast never got one). */
  txHash: string;
  originalTxHash: string;
  serviceId: string;
  resends: number;
}

export type InclusionOutcome = 'found' | 'missing' | 'invalid' | 'poll_error';

export interface SubmissionRecord {
  phase: RebroadcastPhase;
  supplier: string;
  session_id: string;
  session_end_height: number;
  submit_height: number;
  tx_hash: string;
  original_tx_hash: string;
  resends: number;
  outcome?: InclusionOutcome;
  outcome_height?: number;
}

export class RebroadcastStoreError extends RelayMinerError {
  constructor(what: string, opts: { cause?: unknown } = {}) {
    super('REBROADCAST_STORE_FAILED', `rebroadcast store: ${what}`, { ...opts, retryable: true });
  }
}

interface StoredJson {
  m: string;
  h: number;
  t: string;
  o: string;
  s: string;
  n: number;
}

function encodeEntry(e: StoredMessage): string {
  const j: StoredJson = {
    m: Buffer.from(e.msg).toString('base64'),
    h: e.submitHeight,
    t: e.txHash,
    o: e.originalTxHash,
    s: e.serviceId,
    n: e.resends,
  };
  return JSON.stringify(j);
}

/** A stored entry, or undefined when the JSON does not have the expected shape. */
export function decodeStoredMessage(sessionId: string, text: string): StoredMessage | undefined {
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof j !== 'object' || j === null) return undefined;
  const o = j as Partial<StoredJson>;
  if (
    typeof o.m !== 'string' ||
    !Number.isSafeInteger(o.h) ||
    typeof o.t !== 'string' ||
    typeof o.o !== 'string' ||
    typeof o.s !== 'string' ||
    !Number.isSafeInteger(o.n)
  ) {
    return undefined;
  }
  return {
    sessionId,
    msg: new Uint8Array(Buffer.from(o.m, 'base64')),
    submitHeight: o.h!,
    txHash: o.t,
    originalTxHash: o.o,
    serviceId: o.s,
    resends: o.n!,
  };
}

export interface RebroadcastStoreConfig {
  ttl_seconds?: number;
  submission_tracking_ttl_seconds?: number;
}

export class RebroadcastStore {
  private readonly ttl: number;
  private readonly trackTtl: number;

  constructor(
    private readonly deps: { redis: Redis; keys: KeyBuilder },
    cfg: RebroadcastStoreConfig = {},
  ) {
    this.ttl = cfg.ttl_seconds ?? 3600;
    this.trackTtl = cfg.submission_tracking_ttl_seconds ?? 24 * 3600;
  }

  /** Stores the messages of one submitted tx and writes a submission record per session. */
  /**
   * `save` for a transaction already in the mempool: a failure only leaves it unwatched by the
   * reconciler, so it is logged, not thrown.
   */
  async saveSubmitted(
    phase: RebroadcastPhase,
    supplier: string,
    sessionEndHeight: number,
    entries: readonly { sessionId: string; msg: Uint8Array; serviceId: string }[],
    submitHeight: number,
    txHash: string,
    log: Logger,
  ): Promise<void> {
    try {
      await this.save(phase, supplier, sessionEndHeight, entries, submitHeight, txHash);
    } catch (err) {
      log.warn(
        { err, supplier, session_end_height: sessionEndHeight, tx_hash: txHash },
        `${phase} messages not stored for the inclusion reconciler`,
      );
    }
  }

  async save(
    phase: RebroadcastPhase,
    supplier: string,
    sessionEndHeight: number,
    entries: readonly { sessionId: string; msg: Uint8Array; serviceId: string }[],
    submitHeight: number,
    txHash: string,
  ): Promise<void> {
    const k = this.deps.keys;
    const key = k.rebroadcast(phase, supplier, sessionEndHeight);
    const tx = this.deps.redis.multi();
    for (const e of entries) {
      tx.hset(
        key,
        e.sessionId,
        encodeEntry({ ...e, submitHeight, txHash, originalTxHash: txHash, resends: 0 }),
      );
      const rec: SubmissionRecord = {
        phase,
        supplier,
        session_id: e.sessionId,
        session_end_height: sessionEndHeight,
        submit_height: submitHeight,
        tx_hash: txHash,
        original_tx_hash: txHash,
        resends: 0,
      };
      tx.set(k.txTrack(supplier, sessionEndHeight, e.sessionId), JSON.stringify(rec), 'EX', this.trackTtl);
    }
    tx.expire(key, this.ttl);
    tx.sadd(k.rebroadcastIndex(phase), `${supplier}|${sessionEndHeight}`);
    tx.expire(k.rebroadcastIndex(phase), this.ttl);
    await this.exec(tx, 'save');
  }

  /** Groups listed in the phase index. Members that do not parse are ignored. */
  async groups(phase: RebroadcastPhase): Promise<{ supplier: string; sessionEndHeight: number }[]> {
    let members: string[];
    try {
      members = await this.deps.redis.smembers(this.deps.keys.rebroadcastIndex(phase));
    } catch (err) {
      throw new RebroadcastStoreError('SMEMBERS', { cause: err });
    }
    const out: { supplier: string; sessionEndHeight: number }[] = [];
    for (const m of members.sort()) {
      const match = /^([^|]+)\|(\d+)$/.exec(m);
      if (match !== null) out.push({ supplier: match[1]!, sessionEndHeight: Number(match[2]) });
    }
    return out;
  }

  async load(phase: RebroadcastPhase, supplier: string, sessionEndHeight: number): Promise<StoredMessage[]> {
    let raw: Record<string, string>;
    try {
      raw = await this.deps.redis.hgetall(this.deps.keys.rebroadcast(phase, supplier, sessionEndHeight));
    } catch (err) {
      throw new RebroadcastStoreError('HGETALL', { cause: err });
    }
    const out: StoredMessage[] = [];
    for (const [sessionId, text] of Object.entries(raw).sort(([a], [b]) => (a < b ? -1 : 1))) {
      const e = decodeStoredMessage(sessionId, text);
      if (e !== undefined) out.push(e);
    }
    return out;
  }

  /** Rewrites an entry (resend count, latest tx hash) and its submission record. */
  async update(
    phase: RebroadcastPhase,
    supplier: string,
    sessionEndHeight: number,
    e: StoredMessage,
  ): Promise<void> {
    const tx = this.deps.redis.multi();
    tx.hset(this.deps.keys.rebroadcast(phase, supplier, sessionEndHeight), e.sessionId, encodeEntry(e));
    await this.exec(tx, 'update');
    await this.patchRecord(supplier, sessionEndHeight, e.sessionId, {
      tx_hash: e.txHash,
      resends: e.resends,
    });
  }

  /** Removes an entry with its verdict; the index member goes when the group is empty. */
  async finish(
    phase: RebroadcastPhase,
    supplier: string,
    sessionEndHeight: number,
    sessionId: string,
    outcome: InclusionOutcome,
    height: number,
  ): Promise<void> {
    const k = this.deps.keys;
    const key = k.rebroadcast(phase, supplier, sessionEndHeight);
    try {
      await this.deps.redis.hdel(key, sessionId);
      if ((await this.deps.redis.hlen(key)) === 0) {
        await this.deps.redis.srem(k.rebroadcastIndex(phase), `${supplier}|${sessionEndHeight}`);
      }
    } catch (err) {
      throw new RebroadcastStoreError('HDEL', { cause: err });
    }
    await this.patchRecord(supplier, sessionEndHeight, sessionId, { outcome, outcome_height: height });
  }

  async record(
    supplier: string,
    sessionEndHeight: number,
    sessionId: string,
  ): Promise<SubmissionRecord | undefined> {
    let v: string | null;
    try {
      v = await this.deps.redis.get(this.deps.keys.txTrack(supplier, sessionEndHeight, sessionId));
    } catch (err) {
      throw new RebroadcastStoreError('GET', { cause: err });
    }
    return v === null ? undefined : (JSON.parse(v) as SubmissionRecord);
  }

  private async patchRecord(
    supplier: string,
    end: number,
    sessionId: string,
    patch: Partial<SubmissionRecord>,
  ): Promise<void> {
    const prev = await this.record(supplier, end, sessionId);
    if (prev === undefined) return;
    try {
      await this.deps.redis.set(
        this.deps.keys.txTrack(supplier, end, sessionId),
        JSON.stringify({ ...prev, ...patch }),
        'KEEPTTL',
      );
    } catch (err) {
      throw new RebroadcastStoreError('SET', { cause: err });
    }
  }

  private async exec(tx: ReturnType<Redis['multi']>, what: string): Promise<void> {
    let res: [Error | null, unknown][] | null;
    try {
      res = await tx.exec();
    } catch (err) {
      throw new RebroadcastStoreError(what, { cause: err });
    }
    if (res === null) throw new RebroadcastStoreError(`${what} (transaction aborted)`);
    for (const [err] of res) if (err !== null) throw new RebroadcastStoreError(what, { cause: err });
  }
}

export interface ResendGateConfig {
  max_rebroadcasts: number;
  rebroadcast_safety_blocks: number;
}

/** Whether a stored message may be re-broadcast at height h for a window closing at `close`. */
export function mayResend(e: StoredMessage, h: number, close: number, cfg: ResendGateConfig): boolean {
  if (e.resends >= cfg.max_rebroadcasts) return false;
  if (h >= close - cfg.rebroadcast_safety_blocks) return false;
  const threshold =
    e.txHash === '' ? e.submitHeight + 1 : e.submitHeight + Math.floor((close - e.submitHeight) / 2);
  return h >= threshold;
}

export interface InclusionReconcilerDeps {
  store: RebroadcastStore;
  chain: Pick<MinerChain, 'getAllClaimsBySupplier'>;
  tx: Pick<TxClient, 'createClaims' | 'submitProofs'>;
  windows: SessionWindowResolver;
  /** Whether this replica holds the supplier's lease. */
  owns: (supplier: string) => boolean;
  log: Logger;
  metrics: MinerLifecycleMetrics;
}

export interface InclusionReconcilerConfig {
  max_rebroadcasts?: number;
  rebroadcast_safety_blocks?: number;
  /** Expected block interval, for the unordered timeout of a resend. */
  block_time_ms?: number;
  /** Groups checked at once (upstream inclusion_reconciler_max_concurrent). */
  max_concurrent?: number;
  /** A group still running after this is left to finish in the background; the pass moves on. */
  per_group_timeout_ms?: number;
}

export class InclusionReconciler {
  private readonly cfg: Required<InclusionReconcilerConfig>;
  private readonly log: Logger;
  private running = false;

  constructor(
    private readonly deps: InclusionReconcilerDeps,
    cfg: InclusionReconcilerConfig = {},
  ) {
    this.cfg = {
      max_rebroadcasts: 1,
      rebroadcast_safety_blocks: 1,
      block_time_ms: 30_000,
      max_concurrent: 64,
      per_group_timeout_ms: 10_000,
      ...cfg,
    };
    for (const k of ['max_rebroadcasts', 'rebroadcast_safety_blocks', 'block_time_ms'] as const) {
      if (!Number.isSafeInteger(this.cfg[k]) || this.cfg[k] < 0) {
        throw new RelayMinerError('MINER_CONFIG_INVALID', `transaction.${k}: must be an integer ≥ 0`);
      }
    }
    for (const k of ['max_concurrent', 'per_group_timeout_ms'] as const) {
      if (!Number.isSafeInteger(this.cfg[k]) || this.cfg[k] < 1) {
        throw new RelayMinerError(
          'MINER_CONFIG_INVALID',
          `transaction.inclusion_reconciler_${k}: must be an integer ≥ 1`,
        );
      }
    }
    this.log = deps.log.child({ component: 'inclusion_reconciler' });
  }

  /** One pass at height h; skipped (false) while the previous pass still runs. */
  async onBlock(h: number): Promise<boolean> {
    if (this.running) return false;
    this.running = true;
    try {
      const claimsBySupplier = new Map<string, Promise<pb.proofTypes.Claim[]>>();
      const claimsOf = (supplier: string): Promise<pb.proofTypes.Claim[]> => {
        let p = claimsBySupplier.get(supplier);
        if (p === undefined) {
          p = this.deps.chain.getAllClaimsBySupplier(supplier);
          p.catch(() => undefined);
          claimsBySupplier.set(supplier, p);
        }
        return p;
      };
      const tasks: (() => Promise<void>)[] = [];
      for (const phase of ['claim', 'proof'] as const) {
        for (const g of await this.deps.store.groups(phase)) {
          if (!this.deps.owns(g.supplier)) continue;
          const fields = { supplier: g.supplier, session_end_height: g.sessionEndHeight, phase };
          tasks.push(() =>
            this.reconcileGroup(phase, g.supplier, g.sessionEndHeight, h, claimsOf).catch((err: unknown) =>
              this.log.warn({ ...fields, err }, 'inclusion check failed; next block retries'),
            ),
          );
        }
      }
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < tasks.length) {
          const task = tasks[next++]!;
          await this.withTimeout(task());
        }
      };
      await Promise.all(Array.from({ length: Math.min(this.cfg.max_concurrent, tasks.length) }, worker));
      return true;
    } finally {
      this.running = false;
    }
  }

  /** Waits for a group at most per_group_timeout_ms; failures are logged, never thrown. */
  private async withTimeout(work: Promise<void>): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.cfg.per_group_timeout_ms);
    });
    try {
      const r = await Promise.race([work.then(() => 'done' as const), timeout]);
      if (r === 'timeout')
        this.log.warn('inclusion check of a group exceeded its time; it finishes in the background');
    } catch (err) {
      this.log.warn({ err }, 'inclusion check failed; next block retries');
    } finally {
      clearTimeout(timer);
    }
    work.catch(() => undefined);
  }

  private async reconcileGroup(
    phase: RebroadcastPhase,
    supplier: string,
    end: number,
    h: number,
    claimsOf: (s: string) => Promise<pb.proofTypes.Claim[]>,
  ): Promise<void> {
    const entries = await this.deps.store.load(phase, supplier, end);
    if (entries.length === 0) return;
    const w = await this.deps.windows.windows(end, h);
    const close = phase === 'claim' ? w.claim_window_close_height : w.proof_window_close_height;
    let claims: pb.proofTypes.Claim[] | undefined;
    try {
      claims = await claimsOf(supplier);
    } catch (err) {
      if (!(err instanceof ChainNotFoundError)) {
        this.log.debug({ err, supplier }, 'AllClaims query failed');
      } else claims = [];
    }
    const due: StoredMessage[] = [];
    for (const e of entries) {
      if (claims === undefined) {
        if (h > close) await this.finish(phase, supplier, end, e, 'poll_error', h);
        else if (mayResend(e, h, close, this.cfg)) due.push(e);
        continue;
      }
      const claim = claims.find((c) => c.sessionHeader?.sessionId === e.sessionId);
      if (phase === 'claim' && claim !== undefined) {
        await this.finish(phase, supplier, end, e, 'found', h);
        continue;
      }
      if (phase === 'proof' && claim !== undefined) {
        if (claim.proofValidationStatus === pb.proofTypes.ClaimProofStatus.VALIDATED) {
          await this.finish(phase, supplier, end, e, 'found', h);
          continue;
        }
        if (claim.proofValidationStatus === pb.proofTypes.ClaimProofStatus.INVALID) {
          await this.finish(phase, supplier, end, e, 'invalid', h);
          continue;
        }
      }
      if (h > close) await this.finish(phase, supplier, end, e, 'missing', h);
      else if (mayResend(e, h, close, this.cfg)) due.push(e);
    }
    if (due.length > 0) await this.resend(phase, supplier, end, due, h, close);
  }

  private async finish(
    phase: RebroadcastPhase,
    supplier: string,
    end: number,
    e: StoredMessage,
    outcome: InclusionOutcome,
    h: number,
  ): Promise<void> {
    await this.deps.store.finish(phase, supplier, end, e.sessionId, outcome, h);
    this.deps.metrics.inclusionOutcomes.inc({ phase, outcome });
    const fields = { supplier, session_id: e.sessionId, phase, block_height: h, tx_hash: e.txHash };
    if (outcome === 'found') this.log.info(fields, 'submission included on chain');
    else this.log.warn({ ...fields, outcome }, 'submission not confirmed on chain');
  }

  private async resend(
    phase: RebroadcastPhase,
    supplier: string,
    end: number,
    due: StoredMessage[],
    h: number,
    close: number,
  ): Promise<void> {
    // The count goes up before the attempt, so a crash mid-send cannot lift the cap.
    for (const e of due) {
      e.resends++;
      await this.deps.store.update(phase, supplier, end, e);
    }
    const opts = { blocksLeftInWindow: close - h, blockTimeMs: this.cfg.block_time_ms };
    let txHash: string | undefined;
    let result: string;
    try {
      const res =
        phase === 'claim'
          ? await this.deps.tx.createClaims(
              supplier,
              due.map((e) => pb.proofTx.MsgCreateClaim.decode(e.msg)),
              opts,
            )
          : await this.deps.tx.submitProofs(
              supplier,
              due.map((e) => pb.proofTx.MsgSubmitProof.decode(e.msg)),
              opts,
            );
      if (res.ok) {
        txHash = res.txHash;
        result = 'accepted';
      } else {
        result = `${res.stage}_rejected`;
        this.log.warn(
          {
            supplier,
            phase,
            session_end_height: end,
            code: res.code,
            codespace: res.codespace,
            raw_log: res.log,
          },
          're-broadcast rejected',
        );
      }
    } catch (err) {
      result = 'error';
      this.log.warn({ err, supplier, phase, session_end_height: end }, 're-broadcast failed');
    }
    this.deps.metrics.rebroadcasts.inc({ phase, result });
    if (txHash !== undefined) {
      for (const e of due) {
        e.txHash = txHash;
        await this.deps.store.update(phase, supplier, end, e);
      }
      this.log.info(
        { supplier, phase, session_end_height: end, tx_hash: txHash, block_height: h },
        're-broadcast sent',
      );
    }
  }
}
