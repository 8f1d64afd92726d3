/**
 * Ring verification on worker threads (Piscina). Calls made in the same turn of the event loop
 * are packed into batches of up to `max_batch` verifications, one pool task each, so the cost of
 * crossing threads is paid per batch rather than per relay.
 *
 * Results are the same values verifyRingSignature returns. When the pool itself cannot answer (a
 * worker died, the batch missed its deadline, the queue is full, the pool is closed) each affected
 * verification gets `{ ok: false, code: 'RING_VERIFY_UNAVAILABLE', reason }`: the signature was
 * not judged, so the caller answers with a server error, not a signature rejection.
 */
import { Piscina } from 'piscina';
import { InvalidInputError } from '../core/errors.js';
import type { RingVerifyResult } from './blsag.js';
import type { BackendName } from './ec-backend.js';
import { BACKEND_CHOICES, isBackendChoice, selectBackend, type BackendChoice } from './select-backend.js';
import { checkVerifyItem, encodeVerifyBatch, type VerifyItem } from './verify-batch.js';
import type { VerifyTask, VerifyTaskResult, VerifyWorkerData } from './verify-worker.js';

/** Section `rings.verify_pool` of the relayer config. */
export interface RingVerifyPoolConfig {
  /** Worker threads (fixed; they start with the pool). */
  threads: number;
  /** Most verifications carried by one pool task. */
  max_batch: number;
  backend: BackendChoice;
  /** Deadline of a batch from submission to result; 0 disables it. */
  task_timeout_ms: number;
  /** Most batches waiting for a free worker before new ones are refused. */
  max_queue: number;
  /** Distinct prepared rings each worker keeps. */
  ring_cache_entries: number;
}

export const DEFAULT_RING_VERIFY_POOL_CONFIG: RingVerifyPoolConfig = Object.freeze({
  threads: 2,
  max_batch: 16,
  backend: 'auto',
  task_timeout_ms: 5_000,
  max_queue: 4_096,
  ring_cache_entries: 4_096,
});

export type RingVerifyUnavailable = { ok: false; code: 'RING_VERIFY_UNAVAILABLE'; reason: string };
export type PoolVerifyResult = RingVerifyResult | RingVerifyUnavailable;

export interface RingVerifyPoolOptions {
  /** Worker entry module; the pool's own verify-worker by default. */
  workerUrl?: URL;
}

interface PendingVerify {
  item: VerifyItem;
  resolve: (r: PoolVerifyResult) => void;
}

function defaultWorkerUrl(): URL {
  // Under tsx/vitest this module is the .ts source; in dist/ it is compiled .js.
  const ext = import.meta.url.endsWith('.ts') ? 'ts' : 'js';
  return new URL(`./verify-worker.${ext}`, import.meta.url);
}

function unavailable(reason: string): RingVerifyUnavailable {
  return { ok: false, code: 'RING_VERIFY_UNAVAILABLE', reason };
}

function positiveInteger(path: string, v: number, min: number): void {
  if (!Number.isInteger(v) || v < min)
    throw new InvalidInputError(path, `must be an integer ≥ ${min}, got ${v}`);
}

export class RingVerifyPool {
  private readonly pool: Piscina<VerifyTask, VerifyTaskResult>;
  private pending: PendingVerify[] = [];
  private flushScheduled = false;
  private closed = false;

  constructor(
    private readonly cfg: RingVerifyPoolConfig = DEFAULT_RING_VERIFY_POOL_CONFIG,
    opts: RingVerifyPoolOptions = {},
  ) {
    positiveInteger('rings.verify_pool.threads', cfg.threads, 1);
    positiveInteger('rings.verify_pool.max_batch', cfg.max_batch, 1);
    positiveInteger('rings.verify_pool.task_timeout_ms', cfg.task_timeout_ms, 0);
    positiveInteger('rings.verify_pool.max_queue', cfg.max_queue, 1);
    positiveInteger('rings.verify_pool.ring_cache_entries', cfg.ring_cache_entries, 1);
    if (!isBackendChoice(cfg.backend)) {
      throw new InvalidInputError(
        'rings.verify_pool.backend',
        `must be one of ${BACKEND_CHOICES.join(', ')}, got "${String(cfg.backend)}"`,
      );
    }
    // Fail at start-up, not on the first relay, when native is required and missing.
    if (cfg.backend === 'native') selectBackend('native');
    const workerUrl = opts.workerUrl ?? defaultWorkerUrl();
    const workerData: VerifyWorkerData = { backend: cfg.backend, ringCacheEntries: cfg.ring_cache_entries };
    this.pool = new Piscina<VerifyTask, VerifyTaskResult>({
      filename: workerUrl.href,
      minThreads: cfg.threads,
      maxThreads: cfg.threads,
      idleTimeout: Number.POSITIVE_INFINITY,
      maxQueue: cfg.max_queue,
      workerData,
      ...(workerUrl.pathname.endsWith('.ts') ? { execArgv: ['--import', 'tsx'] } : {}),
    });
  }

  /**
   * Verifies one ring signature on a worker. Throws InvalidInputError (as a rejected promise) for
   * a message that is not 32 bytes; every other outcome is a result value.
   */
  verify(
    signature: Uint8Array,
    message32: Uint8Array,
    ringPublicKeys: readonly Uint8Array[],
  ): Promise<PoolVerifyResult> {
    const item: VerifyItem = { signature, message32, ringPublicKeys };
    try {
      checkVerifyItem(item);
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    if (this.closed) return Promise.resolve(unavailable('ring verify pool is closed'));
    return new Promise<PoolVerifyResult>((resolve) => {
      this.pending.push({ item, resolve });
      if (this.pending.length >= this.cfg.max_batch) {
        this.flush();
      } else if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Verifies many signatures; the results are in the same order. */
  verifyMany(items: readonly VerifyItem[]): Promise<PoolVerifyResult[]> {
    return Promise.all(items.map((it) => this.verify(it.signature, it.message32, it.ringPublicKeys)));
  }

  /** Which backend the workers use (asks one of them). */
  async backendInUse(): Promise<BackendName> {
    const r = await this.pool.run({ kind: 'info' });
    return r.backend;
  }

  get threads(): number {
    return this.cfg.threads;
  }

  /** Batches waiting for a free worker. */
  get queuedBatches(): number {
    return this.pool.queueSize;
  }

  /** Sends what is pending, waits for running batches and stops the workers. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    await this.pool.close();
  }

  private flush(): void {
    this.flushScheduled = false;
    while (this.pending.length > 0) {
      this.runBatch(this.pending.splice(0, this.cfg.max_batch));
    }
  }

  private runBatch(batch: PendingVerify[]): void {
    const fail = (reason: string): void => {
      for (const p of batch) p.resolve(unavailable(reason));
    };
    let buf: Uint8Array;
    try {
      buf = encodeVerifyBatch(batch.map((p) => p.item));
    } catch (err) {
      fail(`cannot pack verify batch: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    const timeoutMs = this.cfg.task_timeout_ms;
    const signal = timeoutMs > 0 ? AbortSignal.timeout(timeoutMs) : null;
    void this.pool
      .run({ kind: 'verify', batch: buf }, { transferList: [buf.buffer as ArrayBuffer], signal })
      .then(
        (res) => {
          if (res.results.length !== batch.length) {
            fail(`verify worker answered ${res.results.length} results for ${batch.length} signatures`);
            return;
          }
          for (let i = 0; i < batch.length; i++) batch[i]!.resolve(res.results[i]!);
        },
        (err: unknown) => {
          if (signal?.aborted === true) {
            fail(`verify batch missed its ${timeoutMs} ms deadline`);
          } else {
            fail(`verify worker failed: ${err instanceof Error ? err.message : String(err)}`);
          }
        },
      );
  }
}
