/**
 * Entry of a verify-pool thread: imports the task module named in workerData (its default export
 * is `(task) => result | Promise<result>`) and answers each `{ id, task }` message with
 * `{ id, result }` or `{ id, error }`. Messages are handled in arrival order; several may be
 * queued on the port, so the thread never waits for the main thread between tasks.
 */
import { parentPort, workerData } from 'node:worker_threads';

export interface WorkerHostData {
  /** URL of the task module. */
  moduleUrl: string;
  /** Handed to the task module as `workerData.data`. */
  data: unknown;
}

export interface HostRequest {
  id: number;
  task: unknown;
}

export type HostReply = { id: number; result: unknown } | { id: number; error: string };

type TaskFn = (task: unknown) => unknown;

const port = parentPort;
if (port === null) throw new Error('worker-host must run in a worker thread');
const { moduleUrl } = workerData as WorkerHostData;
const mod = (await import(moduleUrl)) as { default?: unknown };
if (typeof mod.default !== 'function') throw new Error(`${moduleUrl} has no default-exported task function`);
const run = mod.default as TaskFn;

port.on('message', (msg: HostRequest) => {
  let out: unknown;
  try {
    out = run(msg.task);
  } catch (err) {
    port.postMessage({
      id: msg.id,
      error: err instanceof Error ? err.message : String(err),
    } satisfies HostReply);
    return;
  }
  if (out instanceof Promise) {
    out.then(
      (result: unknown) => port.postMessage({ id: msg.id, result } satisfies HostReply),
      (err: unknown) =>
        port.postMessage({
          id: msg.id,
          error: err instanceof Error ? err.message : String(err),
        } satisfies HostReply),
    );
  } else {
    port.postMessage({ id: msg.id, result: out } satisfies HostReply);
  }
});
