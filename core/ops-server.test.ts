import { describe, expect, it } from 'vitest';
import { splitListenAddr, startOpsServer } from './ops-server.js';

describe('splitListenAddr', () => {
  it('splits host and port; an empty host is every interface; brackets of IPv6 are removed', () => {
    expect(['0.0.0.0:9090', ':8081', '[::1]:80', 'localhost:1'].map(splitListenAddr)).toEqual([
      { host: '0.0.0.0', port: 9090 },
      { host: '0.0.0.0', port: 8081 },
      { host: '::1', port: 80 },
      { host: 'localhost', port: 1 },
    ]);
  });
});

describe('startOpsServer', () => {
  it('routes GET by path, 404 otherwise, 405 for other methods, 500 when a route throws', async () => {
    const s = await startOpsServer({ host: '127.0.0.1', port: 0 }, [
      (p) => (p === '/health' ? { status: 200, contentType: 'text/plain', body: 'OK' } : undefined),
      (p) => {
        if (p === '/boom') throw new Error('kaput');
        return undefined;
      },
      (p) =>
        p === '/metrics'
          ? Promise.resolve({ status: 200, contentType: 'text/plain', body: 'm 1\n' })
          : undefined,
    ]);
    try {
      const get = async (path: string, method = 'GET') => {
        const r = await fetch(`http://127.0.0.1:${s.port}${path}`, { method });
        return [r.status, await r.text()];
      };
      expect(await get('/health?x=1')).toEqual([200, 'OK']);
      expect(await get('/metrics')).toEqual([200, 'm 1\n']);
      expect(await get('/nope')).toEqual([404, 'not found\n']);
      expect(await get('/health', 'POST')).toEqual([405, 'method not allowed\n']);
      expect(await get('/boom')).toEqual([500, 'error: kaput\n']);
    } finally {
      await s.close();
    }
  });
  it('fails with the address when the port is taken', async () => {
    const a = await startOpsServer({ host: '127.0.0.1', port: 0 }, []);
    try {
      await expect(startOpsServer({ host: '127.0.0.1', port: a.port }, [])).rejects.toThrow(
        `ops listener could not bind 127.0.0.1:${a.port}`,
      );
    } finally {
      await a.close();
    }
  });
});
