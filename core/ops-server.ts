/**
 * A small HTTP listener for operations endpoints (health, readiness, Prometheus metrics): GET and
 * HEAD only, routes by exact path or prefix, never on the relay hot path.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface OpsReply {
  status: number;
  contentType: string;
  body: string;
}

export type OpsRoute = (path: string) => OpsReply | Promise<OpsReply> | undefined;

export interface OpsServer {
  readonly port: number;
  close(): Promise<void>;
}

/** `host:port` → parts; `:9090` means all interfaces. */
export function splitListenAddr(addr: string): { host: string; port: number } {
  const i = addr.lastIndexOf(':');
  const host = addr.slice(0, i).replace(/^\[|\]$/g, '');
  return { host: host === '' ? '0.0.0.0' : host, port: Number(addr.slice(i + 1)) };
}

export async function startOpsServer(
  addr: { host: string; port: number },
  routes: OpsRoute[],
): Promise<OpsServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?', 1)[0]!;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { 'Content-Type': 'text/plain', Allow: 'GET, HEAD' }).end('method not allowed\n');
      return;
    }
    void (async () => {
      try {
        for (const route of routes) {
          const r = await route(path);
          if (r === undefined) continue;
          res
            .writeHead(r.status, { 'Content-Type': r.contentType })
            .end(req.method === 'HEAD' ? undefined : r.body);
          return;
        }
        res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
      } catch (err) {
        res.writeHead(500, { 'Content-Type': 'text/plain' }).end(`error: ${(err as Error).message}\n`);
      }
    })();
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) =>
      reject(
        new Error(`ops listener could not bind ${addr.host}:${addr.port}: ${err.message}`, { cause: err }),
      ),
    );
    server.listen(addr.port, addr.host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
