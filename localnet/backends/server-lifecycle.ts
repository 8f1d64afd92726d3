/** Start/stop helpers shared by the demo backends: 127.0.0.1 only, port 0, clean close. */
import type { Server as HttpServer } from 'node:http';
import type { Http2Server } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { RelayMinerError } from '../../core/index.js';

/** A demo backend could not start or stop. */
export class DemoBackendError extends RelayMinerError {
  constructor(what: string, opts: { cause?: unknown } = {}) {
    super('DEMO_BACKEND_FAILED', what, opts);
  }
}

/** Every demo backend: where it listens, and how to stop it. */
export interface DemoBackend {
  /** Base URL, e.g. `http://127.0.0.1:40123` (ws:// for the WebSocket backend). */
  readonly url: string;
  close(): Promise<void>;
}

export const LOOPBACK = '127.0.0.1';

/** Listens on 127.0.0.1 with an OS-chosen port; resolves with that port. */
export function listenLoopback(server: HttpServer | Http2Server, name: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void =>
      reject(new DemoBackendError(`${name}: cannot listen on ${LOOPBACK}`, { cause: err }));
    server.once('error', onError);
    server.listen(0, LOOPBACK, () => {
      server.off('error', onError);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/** Stops accepting, then resolves once the server has closed. */
export function closeServer(server: HttpServer | Http2Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.close((err) => (err ? reject(new DemoBackendError('close failed', { cause: err })) : resolve()));
  });
}

/** Reads a whole request body up to `maxBytes`; undefined when larger. */
export function readBody(req: NodeJS.ReadableStream, maxBytes: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > maxBytes) tooLarge = true;
      else chunks.push(c);
    });
    req.on('end', () => resolve(tooLarge ? undefined : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}
