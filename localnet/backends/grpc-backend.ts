/**
 * A gRPC backend over cleartext HTTP/2 (h2c, prior knowledge) on node:http2 (test/dev only), with
 * standard gRPC framing: every message is `flag(1) ‖ length(4, big-endian) ‖ protobuf`, the
 * status travels in trailers (`grpc-status`, `grpc-message`), errors before any message are
 * trailers-only responses. Service `demo.DemoService`:
 *
 * | method | kind | request → response |
 * |---|---|---|
 * | `GetBlockHeight` | unary | `{}` → `{1 height uint64}` |
 * | `Echo` | unary | `{1 payload bytes}` → the same message |
 * | `StreamBlocks` | server streaming | `{1 count uint32, 2 interval_ms uint32}` → `count` × `{1 height uint64, 2 hash bytes}` |
 * | `Fail` | unary | `{1 code uint32, 2 message string}` → that status, no message |
 *
 * Unknown methods answer UNIMPLEMENTED (12); `grpc-encoding: gzip` request messages are
 * accepted; `grpc-timeout` is honoured (DEADLINE_EXCEEDED, 4).
 */
import { createHash } from 'node:crypto';
import http2 from 'node:http2';
import { gunzipSync } from 'node:zlib';
import { BinaryReader, BinaryWriter } from '@bufbuild/protobuf/wire';
import {
  GrpcStatus,
  encodeGrpcFrame,
  encodeGrpcMessage,
  parseGrpcFrames,
  parseGrpcTimeoutMs,
} from '../../core/index.js';
import { closeServer, listenLoopback, type DemoBackend } from './server-lifecycle.js';

export const DEMO_SERVICE = 'demo.DemoService';
export const GRPC_METHODS = {
  getBlockHeight: `/${DEMO_SERVICE}/GetBlockHeight`,
  echo: `/${DEMO_SERVICE}/Echo`,
  streamBlocks: `/${DEMO_SERVICE}/StreamBlocks`,
  fail: `/${DEMO_SERVICE}/Fail`,
} as const;

// Framing and status codes live in core; re-exported so the demo backend's users keep one import.
export {
  GrpcStatus,
  decodeGrpcMessage,
  encodeGrpcFrame,
  encodeGrpcMessage,
  parseGrpcFrames,
  parseGrpcTimeoutMs,
  type GrpcFrame,
} from '../../core/index.js';

export const MAX_GRPC_MESSAGE_BYTES = 4 * 1024 * 1024;
export const MAX_STREAM_BLOCKS = 10_000;

// ---- messages ---------------------------------------------------------------------------------

export interface DemoBlock {
  height: bigint;
  hash: Uint8Array;
}

export const demoMessages = {
  encodeHeight(height: bigint): Uint8Array {
    const w = new BinaryWriter();
    if (height !== 0n) w.uint32(8).uint64(height);
    return w.finish();
  },
  decodeHeight(bytes: Uint8Array): bigint {
    let height = 0n;
    readFields(bytes, (field, r, wireType) => {
      if (field === 1 && wireType === 0) height = BigInt(r.uint64());
      else r.skip(wireType);
    });
    return height;
  },
  encodeEcho(payload: Uint8Array): Uint8Array {
    const w = new BinaryWriter();
    if (payload.length > 0) w.uint32(10).bytes(payload);
    return w.finish();
  },
  decodeEcho(bytes: Uint8Array): Uint8Array {
    let payload: Uint8Array = new Uint8Array();
    readFields(bytes, (field, r, wireType) => {
      if (field === 1 && wireType === 2) payload = Uint8Array.from(r.bytes());
      else r.skip(wireType);
    });
    return payload;
  },
  encodeStreamRequest(req: { count: number; intervalMs: number }): Uint8Array {
    const w = new BinaryWriter();
    if (req.count !== 0) w.uint32(8).uint32(req.count);
    if (req.intervalMs !== 0) w.uint32(16).uint32(req.intervalMs);
    return w.finish();
  },
  decodeStreamRequest(bytes: Uint8Array): { count: number; intervalMs: number } {
    const out = { count: 0, intervalMs: 0 };
    readFields(bytes, (field, r, wireType) => {
      if (field === 1 && wireType === 0) out.count = r.uint32();
      else if (field === 2 && wireType === 0) out.intervalMs = r.uint32();
      else r.skip(wireType);
    });
    return out;
  },
  encodeBlock(b: DemoBlock): Uint8Array {
    const w = new BinaryWriter();
    if (b.height !== 0n) w.uint32(8).uint64(b.height);
    if (b.hash.length > 0) w.uint32(18).bytes(b.hash);
    return w.finish();
  },
  decodeBlock(bytes: Uint8Array): DemoBlock {
    const out: DemoBlock = { height: 0n, hash: new Uint8Array() };
    readFields(bytes, (field, r, wireType) => {
      if (field === 1 && wireType === 0) out.height = BigInt(r.uint64());
      else if (field === 2 && wireType === 2) out.hash = Uint8Array.from(r.bytes());
      else r.skip(wireType);
    });
    return out;
  },
  encodeFail(req: { code: number; message: string }): Uint8Array {
    const w = new BinaryWriter();
    if (req.code !== 0) w.uint32(8).uint32(req.code);
    if (req.message !== '') w.uint32(18).string(req.message);
    return w.finish();
  },
  decodeFail(bytes: Uint8Array): { code: number; message: string } {
    const out = { code: 0, message: '' };
    readFields(bytes, (field, r, wireType) => {
      if (field === 1 && wireType === 0) out.code = r.uint32();
      else if (field === 2 && wireType === 2) out.message = r.string();
      else r.skip(wireType);
    });
    return out;
  },
};

function readFields(
  bytes: Uint8Array,
  onField: (field: number, r: BinaryReader, wireType: number) => void,
): void {
  const r = new BinaryReader(bytes);
  while (r.pos < r.len) {
    const tag = r.uint32();
    onField(tag >>> 3, r, tag & 7);
  }
}

/** The deterministic demo block at `height`. */
export function demoBlock(height: bigint): DemoBlock {
  return { height, hash: Uint8Array.from(createHash('sha256').update(`grpc-block-${height}`).digest()) };
}

// ---- server -----------------------------------------------------------------------------------

export interface GrpcBackendOptions {
  /** Height answered by GetBlockHeight and the first StreamBlocks block. */
  startHeight?: bigint;
}

type Respond = (status: number, message: string) => void;

export class GrpcBackend implements DemoBackend {
  callCount = 0;
  height: bigint;
  private readonly sessions = new Set<http2.ServerHttp2Session>();

  private constructor(
    private readonly server: http2.Http2Server,
    readonly url: string,
    opts: Required<GrpcBackendOptions>,
  ) {
    this.height = opts.startHeight;
  }

  static async start(options: GrpcBackendOptions = {}): Promise<GrpcBackend> {
    const opts = { startHeight: 1000n, ...options };
    const server = http2.createServer({ maxSessionMemory: 64 });
    const ref: { backend?: GrpcBackend } = {};
    server.on('session', (s) => {
      ref.backend?.sessions.add(s);
      s.on('close', () => ref.backend?.sessions.delete(s));
    });
    server.on('stream', (stream, headers) => ref.backend?.handle(stream, headers));
    const port = await listenLoopback(server, 'grpc backend');
    const backend = new GrpcBackend(server, `http://127.0.0.1:${port}`, opts);
    ref.backend = backend;
    return backend;
  }

  async close(): Promise<void> {
    for (const s of this.sessions) s.destroy();
    this.sessions.clear();
    await closeServer(this.server);
  }

  private handle(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    stream.on('error', () => undefined);
    if (headers[':method'] !== 'POST') {
      stream.respond({ ':status': 405 }, { endStream: true });
      return;
    }
    const contentType = String(headers['content-type'] ?? '');
    if (!contentType.startsWith('application/grpc')) {
      stream.respond({ ':status': 415, 'content-type': 'text/plain' });
      stream.end('content-type must be application/grpc');
      return;
    }
    this.callCount++;
    const path = String(headers[':path'] ?? '');
    const encoding = String(headers['grpc-encoding'] ?? 'identity');
    const timeoutMs = parseGrpcTimeoutMs(headers['grpc-timeout'] as string | undefined);

    let headersSent = false;
    let finished = false;
    const timers = new Set<NodeJS.Timeout>();
    const finish: Respond = (status, message) => {
      if (finished || stream.destroyed) return;
      finished = true;
      for (const t of timers) clearTimeout(t);
      const trailers = {
        'grpc-status': String(status),
        ...(message ? { 'grpc-message': encodeGrpcMessage(message) } : {}),
      };
      if (!headersSent) {
        stream.respond(
          { ':status': 200, 'content-type': 'application/grpc+proto', ...trailers },
          { endStream: true },
        );
        return;
      }
      stream.once('wantTrailers', () => stream.sendTrailers(trailers));
      stream.end();
    };
    const send = (message: Uint8Array): void => {
      if (finished || stream.destroyed) return;
      if (!headersSent) {
        headersSent = true;
        stream.respond(
          {
            ':status': 200,
            'content-type': 'application/grpc+proto',
            'grpc-accept-encoding': 'identity,gzip',
          },
          { waitForTrailers: true },
        );
      }
      stream.write(encodeGrpcFrame(message));
    };
    stream.on('close', () => {
      finished = true;
      for (const t of timers) clearTimeout(t);
    });
    if (timeoutMs !== undefined) {
      const t = setTimeout(() => finish(GrpcStatus.DEADLINE_EXCEEDED, 'deadline exceeded'), timeoutMs);
      timers.add(t);
    }

    const chunks: Buffer[] = [];
    let size = 0;
    stream.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= MAX_GRPC_MESSAGE_BYTES + 5) chunks.push(c);
    });
    stream.on('end', () => {
      if (finished) return;
      if (size > MAX_GRPC_MESSAGE_BYTES + 5) {
        finish(GrpcStatus.RESOURCE_EXHAUSTED, `request larger than ${MAX_GRPC_MESSAGE_BYTES} bytes`);
        return;
      }
      const { frames, rest } = parseGrpcFrames(Buffer.concat(chunks));
      if (rest.length > 0 || frames.length !== 1) {
        finish(
          GrpcStatus.INTERNAL,
          `expected exactly one request message, got ${frames.length}${rest.length ? ' and a partial frame' : ''}`,
        );
        return;
      }
      const frame = frames[0]!;
      let message: Buffer;
      if (!frame.compressed) message = frame.message;
      else if (encoding === 'gzip') {
        try {
          message = gunzipSync(frame.message);
        } catch {
          finish(GrpcStatus.INTERNAL, 'gzip message does not decompress');
          return;
        }
      } else {
        finish(GrpcStatus.INTERNAL, `compressed message with grpc-encoding ${encoding}`);
        return;
      }
      try {
        this.dispatch(path, message, send, finish, timers);
      } catch (err) {
        finish(GrpcStatus.INVALID_ARGUMENT, `request does not decode: ${(err as Error).message}`);
      }
    });
  }

  private dispatch(
    path: string,
    message: Buffer,
    send: (m: Uint8Array) => void,
    finish: Respond,
    timers: Set<NodeJS.Timeout>,
  ): void {
    switch (path) {
      case GRPC_METHODS.getBlockHeight:
        send(demoMessages.encodeHeight(this.height));
        finish(GrpcStatus.OK, '');
        return;
      case GRPC_METHODS.echo:
        send(demoMessages.encodeEcho(demoMessages.decodeEcho(message)));
        finish(GrpcStatus.OK, '');
        return;
      case GRPC_METHODS.fail: {
        const req = demoMessages.decodeFail(message);
        finish(req.code === 0 ? GrpcStatus.UNKNOWN : req.code, req.message);
        return;
      }
      case GRPC_METHODS.streamBlocks: {
        const req = demoMessages.decodeStreamRequest(message);
        const count = Math.min(req.count, MAX_STREAM_BLOCKS);
        const first = this.height;
        let i = 0;
        const step = (): void => {
          if (i >= count) {
            finish(GrpcStatus.OK, '');
            return;
          }
          send(demoMessages.encodeBlock(demoBlock(first + BigInt(i++))));
          const t = setTimeout(() => {
            timers.delete(t);
            step();
          }, req.intervalMs);
          timers.add(t);
        };
        step();
        return;
      }
      default:
        finish(GrpcStatus.UNIMPLEMENTED, `unknown method ${path}`);
    }
  }
}
