/**
 * Ring verification on worker threads. Calls made in the same turn of the event loop are packed
 * into batches of up to `max_batch` verifications, one message each, so the cost of crossing
 * threads is paid per batch rather than per relay. A batch goes to the thread with the fewest
 * batches outstanding and is queued on that thread's port: a thread never waits for the main
 * thread between batches, and posting costs one structured-clone message with the batch buffer
 * transferred (no per-task bookkeeping beyond an id and a deadline timer).
 *
 * Results are the same values verifyRingSignature returns. When the pool itself cannot answer (a
 * worker died, the batch missed its deadline, the queue is full, the pool is closed) each affected
 * verification gets `{ ok: false, code: 'RING_VERIFY_UNAVAILABLE', reason }`: the signature was
 * not judged, so the caller answers with a server error, not a signature rejection.
 */
import { Worker } from 'node:worker_threads';
import { InvalidInputError } from '../core/errors.js';
import type { RingVerifyResult } from './blsag.js';
import type { BackendName } from './ec-backend.js';
import { BACKEND_CHOICES, isBackendChoice, selectBackend, type BackendChoice } from './select-backend.js';
import { checkVerifyItem, encodeVerifyBatch, type VerifyItem } from './verify-batch.js';
import type { VerifyTask, VerifyTaskResult, VerifyWorkerData } from './verify-worker.js';
import type { HostReply, HostRequest, WorkerHostData } from './worker-host.js';

/** Section `rings.verify_pool` of the relayer config. */
export interface RingVerifyPoolConfig {
  /** Worker threads (fixed; they start with the pool). */
  threads: number;
  /** Most verifications carried by one pool task. */
  max_batch: number;
  backend: BackendChoice;
  /** Deadline of a batch from submission to result; 0 disables it. */
  task_timeout_ms: number;
  /** Most batches outstanding (sent, not answered) before new ones are refused. */
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
  /** Task module each thread runs (default export `(task) => result`); the pool's verify-worker by default. */
  workerUrl?: URL;
}

interface PendingVerify {
  item: VerifyItem;
  resolve: (r: PoolVerifyResult) => void;
}

/** A message sent to a thread and not answered yet. */
interface Outstanding {
  thread: PoolThread;
  timer: NodeJS.Timeout | undefined;
  settle: (reply: { result: unknown } | { error: string }) => void;
}

interface PoolThread {
  worker: Worker;
  /** Ids of the messages this thread holds. */
  ids: Set<number>;
  exited: boolean;
}

function siblingUrl(name: string): URL {
  // Under tsx/vitest this module is the .ts source; in dist/ it is compiled .js.
  const ext = import.meta.url.endsWith('.ts') ? 'ts' : 'js';
  return new URL(`./${name}.${ext}`, import.meta.url);
}

function unavailable(reason: string): RingVerifyUnavailable {
  return { ok: false, code: 'RING_VERIFY_UNAVAILABLE', reason };
}

function positiveInteger(path: string, v: number, min: number): void {
  if (!Number.isInteger(v) || v < min)
    throw new InvalidInputError(path, `must be an integer ≥ ${min}, got ${v}`);
}

export class RingVerifyPool {
  private readonly threadsList: PoolThread[] = [];
  private readonly outstanding = new Map<number, Outstanding>();
  private readonly hostUrl = siblingUrl('worker-host');
  private readonly hostData: WorkerHostData;
  private nextId = 1;
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
    const data: VerifyWorkerData = { backend: cfg.backend, ringCacheEntries: cfg.ring_cache_entries };
    this.hostData = { moduleUrl: (opts.workerUrl ?? siblingUrl('verify-worker')).href, data };
    for (let i = 0; i < cfg.threads; i++) this.threadsList.push(this.spawn());
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
    const reply = await new Promise<{ result: unknown } | { error: string }>((settle) => {
      if (!this.post({ kind: 'info' }, undefined, settle)) settle({ error: 'ring verify pool is closed' });
    });
    if ('error' in reply) throw new Error(`verify worker failed: ${reply.error}`);
    return (reply.result as VerifyTaskResult).backend;
  }

  get threads(): number {
    return this.cfg.threads;
  }

  /** Batches sent to the threads and not answered yet. */
  get queuedBatches(): number {
    return this.outstanding.size;
  }

  /** Sends what is pending, waits for the batches out on the threads and stops the workers. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    const deadline = Date.now() + Math.max(this.cfg.task_timeout_ms, 1_000);
    while (this.outstanding.size > 0 && Date.now() < deadline) {
      await new Promise((res) => setTimeout(res, 5));
    }
    for (const [id, o] of this.outstanding) this.answer(id, o, { error: 'ring verify pool closed' });
    await Promise.all(this.threadsList.map((t) => t.worker.terminate()));
  }

  private spawn(): PoolThread {
    // Running from the .ts sources (tsx, tests), the thread registers tsx's loader before it
    // imports the host; compiled, it imports the .js host directly.
    const host = JSON.stringify(this.hostUrl.href);
    const script = this.hostUrl.pathname.endsWith('.ts')
      ? `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((t) => { t.register(); return import(${host}); });`
      : `import(${host});`;
    const worker = new Worker(script, { eval: true, workerData: this.hostData });
    const thread: PoolThread = { worker, ids: new Set(), exited: false };
    const spawnedAt = Date.now();
    // An idle pool does not keep the process alive; a thread holding work does.
    worker.unref();
    worker.on('message', (reply: HostReply) => {
      const o = this.outstanding.get(reply.id);
      if (o !== undefined) this.answer(reply.id, o, 'error' in reply ? { error: reply.error } : reply);
    });
    let failure = '';
    worker.on('error', (err) => {
      failure = err.message;
    });
    worker.on('exit', (code) => {
      thread.exited = true;
      const why = `verify worker exited with code ${code}${failure === '' ? '' : ` (${failure})`}`;
      for (const id of [...thread.ids]) {
        const o = this.outstanding.get(id);
        if (o !== undefined) this.answer(id, o, { error: why });
      }
      // Replace the thread; one that dies right after starting is replaced after a pause, so a
      // task module that cannot load does not spin.
      const replace = (): void => {
        const at = this.threadsList.indexOf(thread);
        if (at >= 0 && !this.closed) this.threadsList[at] = this.spawn();
      };
      if (Date.now() - spawnedAt < 1_000) setTimeout(replace, 1_000).unref();
      else replace();
    });
    return thread;
  }

  /** Sends one task to the least busy live thread; false when there is none. */
  private post(task: VerifyTask, transfer: ArrayBuffer | undefined, settle: Outstanding['settle']): boolean {
    let thread: PoolThread | undefined;
    for (const t of this.threadsList) {
      if (t.exited) continue;
      if (thread === undefined || t.ids.size < thread.ids.size) thread = t;
    }
    if (thread === undefined) return false;
    const id = this.nextId++;
    const timeoutMs = this.cfg.task_timeout_ms;
    const o: Outstanding = { thread, timer: undefined, settle };
    if (timeoutMs > 0) {
      o.timer = setTimeout(() => {
        this.answer(id, o, { error: `deadline: no answer within ${timeoutMs} ms` });
        // A thread that misses a deadline is stuck: replace it (its other batches fail on exit).
        void o.thread.worker.terminate();
      }, timeoutMs);
    }
    this.outstanding.set(id, o);
    if (thread.ids.size === 0) thread.worker.ref();
    thread.ids.add(id);
    const msg: HostRequest = { id, task };
    try {
      thread.worker.postMessage(msg, transfer === undefined ? [] : [transfer]);
    } catch (err) {
      this.answer(id, o, { error: err instanceof Error ? err.message : String(err) });
    }
    return true;
  }

  private answer(id: number, o: Outstanding, reply: { result: unknown } | { error: string }): void {
    this.outstanding.delete(id);
    o.thread.ids.delete(id);
    if (o.thread.ids.size === 0 && !o.thread.exited) o.thread.worker.unref();
    if (o.timer !== undefined) clearTimeout(o.timer);
    o.settle(reply);
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
    if (this.outstanding.size >= this.cfg.max_queue) {
      fail(`ring verify queue full (${this.outstanding.size} batches outstanding)`);
      return;
    }
    let buf: Uint8Array;
    try {
      buf = encodeVerifyBatch(batch.map((p) => p.item));
    } catch (err) {
      fail(`cannot pack verify batch: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    const settle = (reply: { result: unknown } | { error: string }): void => {
      if ('error' in reply) {
        fail(
          reply.error.startsWith('deadline')
            ? `verify batch missed its ${this.cfg.task_timeout_ms} ms deadline`
            : `verify worker failed: ${reply.error}`,
        );
        return;
      }
      const results = (reply.result as VerifyTaskResult).results;
      if (results.length !== batch.length) {
        fail(`verify worker answered ${results.length} results for ${batch.length} signatures`);
        return;
      }
      for (let i = 0; i < batch.length; i++) batch[i]!.resolve(results[i]!);
    };
    const task: VerifyTask = { kind: 'verify', batch: buf };
    if (!this.post(task, buf.buffer as ArrayBuffer, settle)) fail('no live verify worker');
  }
}
