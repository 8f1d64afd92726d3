/**
 * A redis-server of a test's own on a free loopback port, for fault tests that kill, pause or
 * restart it without touching the shared server on 6379.
 *
 *   const port = await freePort();
 *   const server = await startRedisServer(port, { appendonly: true, dir });
 *   …
 *   await stopRedisServer(server); // SIGKILL
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      s.close(() => resolve(typeof addr === 'object' && addr !== null ? addr.port : 0));
    });
  });
}

export interface RedisServerOptions {
  /** Persist every write (appendfsync always) in `dir`, so a restart keeps what was acknowledged. */
  appendonly?: boolean;
  dir?: string;
  /** Allow DEBUG (e.g. DEBUG SLEEP to freeze the server) from loopback clients. */
  enableDebug?: boolean;
  /** Further redis-server arguments, e.g. `['--enable-debug-command', 'local']`. */
  args?: string[];
}

/** Starts redis-server on `port` and resolves once it answers PING. */
export async function startRedisServer(port: number, o: RedisServerOptions = {}): Promise<ChildProcess> {
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', ''];
  if (o.appendonly === true) args.push('--appendonly', 'yes', '--appendfsync', 'always');
  else args.push('--appendonly', 'no');
  if (o.dir !== undefined) args.push('--dir', o.dir);
  if (o.enableDebug === true) args.push('--enable-debug-command', 'local');
  if (o.args !== undefined) args.push(...o.args);
  const child = spawn('redis-server', args, { stdio: 'ignore' });
  const probe = new Redis({
    port,
    host: '127.0.0.1',
    lazyConnect: true,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
  });
  probe.on('error', () => undefined);
  for (let i = 0; i < 100; i++) {
    try {
      await probe.connect();
      await probe.ping();
      probe.disconnect();
      return child;
    } catch {
      probe.disconnect();
      await new Promise((res) => setTimeout(res, 50));
    }
  }
  child.kill('SIGKILL');
  throw new Error(`redis-server on port ${port} did not start`);
}

/** SIGKILL (no shutdown save), resolved once the process is gone. */
export async function stopRedisServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise((res) => child.once('exit', res));
  process.kill(child.pid, 'SIGKILL');
  await exited;
}

/** Polls `cond` every 20 ms until true; throws after `timeoutMs`. */
export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error('condition not reached in time');
    await new Promise((res) => setTimeout(res, 20));
  }
}
