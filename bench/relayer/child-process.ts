/**
 * Child processes of the relayer bench: each runs one `.ts` entry under tsx with an IPC channel,
 * announces itself with one `{ type: 'ready', … }` message and stops on `{ type: 'stop' }` (or
 * when the channel closes). Their stdout and stderr go to this process's stderr so the JSON
 * lines on stdout stay clean.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import {
  PerformanceObserver,
  constants,
  monitorEventLoopDelay,
  type IntervalHistogram,
} from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

export interface ChildMessage {
  type: string;
  [field: string]: unknown;
}

export interface BenchChild<R extends ChildMessage> {
  readonly name: string;
  readonly pid: number;
  readonly ready: R;
  /** Sends a request and resolves with the first message of `replyType`. */
  ask<T extends ChildMessage>(msg: ChildMessage, replyType: string, timeoutMs?: number): Promise<T>;
  /** Asks the child to stop; kills it (SIGKILL) when it has not exited after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

/** CPU time of the whole process (every thread) and event-loop use of its main thread, so far. */
export interface ProcessUsage {
  wall_ms: number;
  cpu_us: number;
  /** Main thread only, where the platform tells. */
  main_cpu_us?: number;
  elu_active_ms: number;
  elu_idle_ms: number;
  /** Event-loop delay since the previous sample (1 ms resolution timer): p99 and max, ms. */
  loop_delay_p99_ms: number;
  loop_delay_max_ms: number;
  /** Main-thread garbage collections since the previous sample: full (mark-compact) and young. */
  gc_major: number;
  gc_minor: number;
  /** Their pauses (the main thread stopped), ms: longest full, longest young, and the total. */
  gc_major_max_pause_ms: number;
  gc_minor_max_pause_ms: number;
  gc_pause_total_ms: number;
}

let loopDelay: IntervalHistogram | undefined;
const gc = { major: 0, minor: 0, majorMax: 0, minorMax: 0, total: 0 };

function watchGc(): void {
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = (e as { detail?: { kind?: number } }).detail?.kind;
      gc.total += e.duration;
      if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) {
        gc.major++;
        gc.majorMax = Math.max(gc.majorMax, e.duration);
      } else if (kind === constants.NODE_PERFORMANCE_GC_MINOR) {
        gc.minor++;
        gc.minorMax = Math.max(gc.minorMax, e.duration);
      }
    }
  }).observe({ entryTypes: ['gc'] });
}

/** CPU time of the main thread alone (Linux /proc, clock ticks of 10 ms); undefined elsewhere. */
function mainThreadCpuUs(): number | undefined {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * 10_000;
  } catch {
    return undefined;
  }
}

export function processUsage(): ProcessUsage {
  const cpu = process.cpuUsage();
  const elu = performance.eventLoopUtilization();
  const main = mainThreadCpuUs();
  if (loopDelay === undefined) {
    loopDelay = monitorEventLoopDelay({ resolution: 1 });
    loopDelay.enable();
    watchGc();
  }
  const gcSince = { ...gc };
  Object.assign(gc, { major: 0, minor: 0, majorMax: 0, minorMax: 0, total: 0 });
  const delay = { p99: loopDelay.percentile(99) / 1e6, max: loopDelay.max / 1e6 };
  loopDelay.reset();
  return {
    ...(main !== undefined ? { main_cpu_us: main } : {}),
    wall_ms: performance.now(),
    cpu_us: cpu.user + cpu.system,
    elu_active_ms: elu.active,
    elu_idle_ms: elu.idle,
    loop_delay_p99_ms: Number.isFinite(delay.p99) ? delay.p99 : 0,
    loop_delay_max_ms: Number.isFinite(delay.max) ? delay.max : 0,
    gc_major: gcSince.major,
    gc_minor: gcSince.minor,
    gc_major_max_pause_ms: gcSince.majorMax,
    gc_minor_max_pause_ms: gcSince.minorMax,
    gc_pause_total_ms: gcSince.total,
  };
}

/** Between two samples: CPU % of one core (200 = two cores busy) and main-thread busy fraction. */
export function usageBetween(
  a: ProcessUsage,
  b: ProcessUsage,
): { cpu_pct: number; main_thread_busy: number } {
  const wall = b.wall_ms - a.wall_ms;
  const active = b.elu_active_ms - a.elu_active_ms;
  const idle = b.elu_idle_ms - a.elu_idle_ms;
  return {
    cpu_pct: wall > 0 ? ((b.cpu_us - a.cpu_us) / 1000 / wall) * 100 : 0,
    main_thread_busy: active + idle > 0 ? active / (active + idle) : 0,
  };
}

/** What a child entry uses to talk to the bench process. */
export function parentChannel(): {
  send(msg: ChildMessage): Promise<void>;
  on(type: string, fn: (msg: ChildMessage) => void | Promise<void>): void;
  onDisconnect(fn: () => void): void;
} {
  if (process.send === undefined)
    throw new Error('this entry must be started by the relayer bench (no IPC channel)');
  // Ctrl-C reaches the whole process group: the bench process decides when children stop.
  process.on('SIGINT', () => undefined);
  const handlers = new Map<string, (msg: ChildMessage) => void | Promise<void>>();
  process.on('message', (m: ChildMessage) => {
    const fn = handlers.get(m.type);
    if (fn !== undefined) void Promise.resolve(fn(m)).catch((err: unknown) => fail(err));
  });
  const fail = (err: unknown): void => {
    process.stderr.write(
      `bench child ${process.argv[1] ?? ''}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exit(1);
  };
  return {
    send: (msg) =>
      new Promise((resolve, reject) => {
        process.send!(msg, undefined, {}, (err: Error | null) => (err ? reject(err) : resolve()));
      }),
    on: (type, fn) => handlers.set(type, fn),
    onDisconnect: (fn) => {
      process.on('disconnect', fn);
      process.on('SIGTERM', fn);
    },
  };
}

/**
 * Answers `profile-start` / `profile-stop { file }`: a CPU profile of this process's main thread
 * (200 µs sampling) over exactly the window the bench asks for, written to `file`.
 */
export function answerProfileRequests(parent: ReturnType<typeof parentChannel>): void {
  const inspector = new Session();
  inspector.connect();
  const post = (method: string, params?: object): Promise<unknown> =>
    new Promise((resolve, reject) => {
      inspector.post(method, params, (err, res) => (err ? reject(err) : resolve(res)));
    });
  parent.on('profile-start', async () => {
    await post('Profiler.enable');
    await post('Profiler.setSamplingInterval', { interval: 200 });
    await post('Profiler.start');
    await parent.send({ type: 'profile-started' });
  });
  parent.on('profile-stop', async (m) => {
    const { profile } = (await post('Profiler.stop')) as { profile: unknown };
    writeFileSync(String(m['file']), JSON.stringify(profile));
    await parent.send({ type: 'profile-stopped', file: m['file'] });
  });
}

/** Starts `entry` (a path relative to this folder) and waits for its ready message. */
export async function startChild<R extends ChildMessage>(
  name: string,
  entry: string,
  opts: { env?: Record<string, string>; nodeFlags?: readonly string[]; readyTimeoutMs?: number } = {},
): Promise<BenchChild<R>> {
  const file = fileURLToPath(new URL(entry, import.meta.url));
  // RELAYER_BENCH_NODE_ARGS: extra node flags for the children (e.g. --trace-gc, which NODE_OPTIONS
  // refuses), after the child's own, so they can override them.
  const extra = (process.env['RELAYER_BENCH_NODE_ARGS'] ?? '').split(' ').filter((a) => a !== '');
  const argv = [...(opts.nodeFlags ?? []), ...extra, '--import', 'tsx', file];
  const child: ChildProcess = spawn(process.execPath, argv, {
    stdio: ['ignore', process.stderr, process.stderr, 'ipc'],
    env: { ...process.env, ...opts.env },
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const waiters: { type: string; resolve: (m: ChildMessage) => void; reject: (e: Error) => void }[] = [];
  const failAll = (err: Error): void => {
    for (const w of waiters.splice(0)) w.reject(err);
  };
  child.on('message', (m: ChildMessage) => {
    const i = waiters.findIndex((w) => w.type === m.type);
    if (i >= 0) waiters.splice(i, 1)[0]!.resolve(m);
  });
  child.once('exit', (code, signal) => failAll(new Error(`${name} exited (code ${code}, signal ${signal})`)));
  child.once('error', (err) => failAll(err));

  const waitFor = <T extends ChildMessage>(type: string, timeoutMs: number): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      if (child.exitCode !== null || child.signalCode !== null) {
        reject(new Error(`${name} is not running`));
        return;
      }
      const timer = setTimeout(() => {
        const i = waiters.indexOf(w);
        if (i >= 0) waiters.splice(i, 1);
        reject(new Error(`${name}: no "${type}" message within ${timeoutMs} ms`));
      }, timeoutMs);
      const w = {
        type,
        resolve: (m: ChildMessage) => {
          clearTimeout(timer);
          resolve(m as T);
        },
        reject: (e: Error) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      waiters.push(w);
    });

  let stopping: Promise<void> | undefined;
  const stop = (graceMs = 15_000): Promise<void> => {
    stopping ??= (async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      if (child.connected) child.send({ type: 'stop' }, () => undefined);
      else child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    })();
    return stopping;
  };

  try {
    const ready = await waitFor<R>('ready', opts.readyTimeoutMs ?? 60_000);
    return {
      name,
      pid: child.pid!,
      ready,
      ask: <T extends ChildMessage>(msg: ChildMessage, replyType: string, timeoutMs = 30_000): Promise<T> => {
        const reply = waitFor<T>(replyType, timeoutMs);
        child.send(msg);
        return reply;
      },
      stop,
    };
  } catch (err) {
    await stop(2_000);
    throw err;
  }
}
