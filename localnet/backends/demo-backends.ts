/** All five demo backends at once, for the dev stack and e2e tests. */
import { GrpcBackend } from './grpc-backend.js';
import { JsonRpcBackend } from './jsonrpc-backend.js';
import { RestBackend } from './rest-backend.js';
import { StreamingBackend } from './streaming-backend.js';
import { WebSocketBackend, type WebSocketBackendOptions } from './websocket-backend.js';

export interface DemoBackends {
  jsonrpc: JsonRpcBackend;
  rest: RestBackend;
  websocket: WebSocketBackend;
  streaming: StreamingBackend;
  grpc: GrpcBackend;
  close(): Promise<void>;
}

/** Starts every backend; if one fails, the ones already started are closed before rethrowing. */
export async function startDemoBackends(
  opts: { websocket?: WebSocketBackendOptions } = {},
): Promise<DemoBackends> {
  const started: { close(): Promise<void> }[] = [];
  const track = <T extends { close(): Promise<void> }>(b: T): T => {
    started.push(b);
    return b;
  };
  try {
    const jsonrpc = track(await JsonRpcBackend.start());
    const rest = track(await RestBackend.start());
    const websocket = track(await WebSocketBackend.start(opts.websocket));
    const streaming = track(await StreamingBackend.start());
    const grpc = track(await GrpcBackend.start());
    return {
      jsonrpc,
      rest,
      websocket,
      streaming,
      grpc,
      close: async () => {
        await Promise.all(started.map((b) => b.close()));
      },
    };
  } catch (err) {
    await Promise.allSettled(started.map((b) => b.close()));
    throw err;
  }
}
