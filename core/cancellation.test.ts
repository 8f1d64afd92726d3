import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { Cancellation, type CancelSignal } from './cancellation.js';

describe('Cancellation', () => {
  it('runs each listener once, in order, after setting aborted and reason; a second abort does nothing', () => {
    const c = new Cancellation();
    const seen: string[] = [];
    c.addEventListener('abort', () => seen.push(`a:${String(c.aborted)}:${String(c.reason)}`));
    c.addEventListener('abort', () => seen.push('b'));
    expect([c.aborted, c.reason]).toEqual([false, undefined]);
    c.abort('client gone');
    c.abort('again');
    expect(seen).toEqual(['a:true:client gone', 'b']);
    expect([c.aborted, c.reason, c.listenerCount('abort')]).toEqual([true, 'client gone', 0]);
  });

  it('gives an Error as the default reason', () => {
    const c = new Cancellation();
    c.abort();
    expect(c.reason).toEqual(new Error('operation cancelled'));
  });

  it('does not run a removed listener, nor one added after the abort', () => {
    const c = new Cancellation();
    const seen: string[] = [];
    const removed = (): number => seen.push('removed');
    c.addEventListener('abort', removed);
    c.removeEventListener('abort', removed);
    expect(c.listenerCount('abort')).toBe(0);
    c.abort();
    c.addEventListener('abort', () => seen.push('late'));
    expect(seen).toEqual([]);
    expect(c.listenerCount('abort')).toBe(0);
  });

  it('runs every listener even when one throws, then throws the first error', () => {
    const c = new Cancellation();
    const seen: string[] = [];
    c.addEventListener('abort', () => {
      throw new Error('first');
    });
    c.addEventListener('abort', () => {
      seen.push('second ran');
      throw new Error('second');
    });
    c.addEventListener('abort', () => seen.push('third ran'));
    expect(() => c.abort()).toThrow(new Error('first'));
    expect(seen).toEqual(['second ran', 'third ran']);
    expect(c.aborted).toBe(true);
  });

  it('is interchangeable with an AbortSignal where a CancelSignal is taken', () => {
    const fired: string[] = [];
    const watch = (s: CancelSignal, name: string): void =>
      s.addEventListener('abort', () => fired.push(`${name}:${String(s.aborted)}`), { once: true });
    const ac = new AbortController();
    const c = new Cancellation();
    watch(ac.signal, 'signal');
    watch(c, 'cancellation');
    ac.abort();
    c.abort();
    expect(fired).toEqual(['signal:true', 'cancellation:true']);
  });
});

describe('Cancellation as an undici request signal', () => {
  let server: Server | undefined;
  let pool: Pool | undefined;
  afterEach(async () => {
    await pool?.destroy();
    server?.closeAllConnections();
    await new Promise((r) => server?.close(r));
    server = undefined;
    pool = undefined;
  });

  const start = async (answer: boolean): Promise<{ origin: string; closed: Promise<void> }> => {
    let closedResolve!: () => void;
    const closed = new Promise<void>((r) => (closedResolve = r));
    server = createServer((req, res) => {
      req.socket.on('close', closedResolve);
      if (answer) res.end('ok');
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    return { origin: `http://127.0.0.1:${port}`, closed };
  };

  it('cancels an in-flight request: the call rejects with the reason and the connection is closed', async () => {
    const { origin, closed } = await start(false);
    pool = new Pool(origin);
    const c = new Cancellation();
    const call = pool.request({ path: '/', method: 'GET', signal: c });
    await new Promise((r) => setTimeout(r, 50));
    const reason = new Error('client disconnected');
    c.abort(reason);
    await expect(call).rejects.toBe(reason);
    await closed;
  });

  it('leaves no listener behind once the answer body closed', async () => {
    const { origin } = await start(true);
    pool = new Pool(origin);
    const c = new Cancellation();
    const res = await pool.request({ path: '/', method: 'GET', signal: c });
    expect(c.listenerCount('abort')).toBe(1);
    expect(await res.body.text()).toBe('ok');
    // undici drops its listener on the body's 'close', emitted after the last read.
    await new Promise((r) => setImmediate(r));
    expect(c.listenerCount('abort')).toBe(0);
  });
});
