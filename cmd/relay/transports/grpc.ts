/**
 * Direct gRPC and gRPC-Web relays to the relayer's gRPC listener
 * (`/pocket.service.RelayService/SendRelay`): one length-prefixed RelayRequest message in, one
 * signed RelayResponse message out, the call's status in the trailers (native) or the trailer
 * frame (gRPC-Web). The backend's own gRPC status travels inside the signed payload headers.
 */
import http2 from 'node:http2';
import {
  GRPC_WEB_FLAG_TRAILERS,
  GrpcFrameDecoder,
  GrpcStatus,
  decodeGrpcMessage,
  encodeGrpcFrame,
  grpcStatusName,
  parseGrpcWebTrailers,
  type RawGrpcFrame,
} from '../../../core/index.js';
import { verifyHttpRelayResponse, type EcBackend } from '../../../rings/index.js';
import {
  failure,
  judgeBody,
  reasonOf,
  transportFailure,
  type AttemptResult,
  type OutgoingRelay,
  type RelayTransport,
} from './types.js';

export const SEND_RELAY_PATH = '/pocket.service.RelayService/SendRelay';
const MAX_MESSAGE_BYTES = 100 * 1024 * 1024;

export interface GrpcTransportOptions {
  backend: EcBackend;
  /** gRPC listener, e.g. http://127.0.0.1:8081 */
  url: string;
  web: boolean;
}

interface CallAnswer {
  status: number;
  message: string;
  frames: RawGrpcFrame[];
}

export class GrpcTransport implements RelayTransport {
  private session: http2.ClientHttp2Session | undefined;

  constructor(private readonly o: GrpcTransportOptions) {}

  async send(relay: OutgoingRelay, signal: AbortSignal): Promise<AttemptResult> {
    let answer: CallAnswer | AttemptResult;
    try {
      answer = this.o.web
        ? await this.webCall(relay.bytes, signal)
        : await this.nativeCall(relay.bytes, signal);
    } catch (err) {
      return transportFailure(err, signal);
    }
    if ('ok' in answer) return answer;
    if (answer.status !== GrpcStatus.OK) {
      return failure(
        `relayer_grpc_${grpcStatusName(answer.status).toLowerCase()}`,
        `the relayer answered gRPC status ${answer.status} (${grpcStatusName(answer.status)}): ${answer.message}`,
        answer.status === GrpcStatus.UNAVAILABLE,
      );
    }
    const messages = answer.frames.filter((f) => (f.flags & GRPC_WEB_FLAG_TRAILERS) === 0);
    if (messages.length !== 1) {
      return failure('response_malformed', `expected one RelayResponse message, got ${messages.length}`);
    }
    const v = verifyHttpRelayResponse(
      this.o.backend,
      messages[0]!.message,
      relay.ctx.supplierPublicKey,
      relay.ctx.header,
    );
    if (!v.ok) return failure(reasonOf(v.code), v.reason);
    const backendStatus = v.headers.get('grpc-status') ?? v.headers.get('Grpc-Status');
    if (backendStatus !== undefined && backendStatus[0] !== '0') {
      const code = Number(backendStatus[0]);
      const msg = decodeGrpcMessage((v.headers.get('grpc-message') ?? [''])[0] ?? '');
      return failure(
        `backend_grpc_${grpcStatusName(code).toLowerCase()}`,
        `the backend answered gRPC status ${code} (${grpcStatusName(code)}): ${msg}`,
      );
    }
    return judgeBody(v.status, v.body, 1, { jsonRpc: false });
  }

  private client(): http2.ClientHttp2Session {
    const s = this.session;
    if (s !== undefined && !s.closed && !s.destroyed) return s;
    const created = http2.connect(this.o.url);
    created.on('error', () => undefined);
    created.on('close', () => {
      if (this.session === created) this.session = undefined;
    });
    this.session = created;
    return created;
  }

  private nativeCall(bytes: Uint8Array, signal: AbortSignal): Promise<CallAnswer> {
    return new Promise((resolve, reject) => {
      const req = this.client().request(
        {
          ':method': 'POST',
          ':path': SEND_RELAY_PATH,
          'content-type': 'application/grpc',
          te: 'trailers',
          'rpc-type': '1',
        },
        { signal },
      );
      let headers: http2.IncomingHttpHeaders = {};
      let trailers: http2.IncomingHttpHeaders = {};
      const chunks: Buffer[] = [];
      req.on('response', (h) => (headers = h));
      req.on('trailers', (t: http2.IncomingHttpHeaders) => {
        trailers = t;
      });
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('error', reject);
      req.on('close', () => {
        if (signal.aborted) {
          reject(signal.reason as Error);
          return;
        }
        const src = trailers['grpc-status'] !== undefined ? trailers : headers;
        if (src['grpc-status'] === undefined) {
          reject(new Error(`no grpc-status (HTTP status ${String(headers[':status'])})`));
          return;
        }
        const decoded = new GrpcFrameDecoder(MAX_MESSAGE_BYTES).push(Buffer.concat(chunks));
        resolve({
          status: Number(src['grpc-status']),
          message: decodeGrpcMessage(String(src['grpc-message'] ?? '')),
          frames: decoded.ok ? decoded.frames : [],
        });
      });
      req.end(encodeGrpcFrame(bytes));
    });
  }

  private async webCall(bytes: Uint8Array, signal: AbortSignal): Promise<CallAnswer | AttemptResult> {
    const res = await fetch(new URL(SEND_RELAY_PATH, this.o.url), {
      method: 'POST',
      headers: { 'content-type': 'application/grpc-web+proto', 'x-grpc-web': '1', 'rpc-type': '1' },
      body: encodeGrpcFrame(bytes),
      signal,
    });
    const raw = Buffer.from(await res.arrayBuffer());
    if (res.status !== 200) {
      return failure(
        `relayer_http_${res.status}`,
        `the relayer answered ${res.status}: ${raw.subarray(0, 300).toString('utf8')}`,
        res.status >= 500,
      );
    }
    const decoded = new GrpcFrameDecoder(MAX_MESSAGE_BYTES).push(raw);
    if (!decoded.ok) return failure('response_malformed', 'gRPC-Web frame too large');
    const trailer = decoded.frames.find((f) => (f.flags & GRPC_WEB_FLAG_TRAILERS) !== 0);
    const kv = trailer !== undefined ? parseGrpcWebTrailers(trailer.message) : {};
    const statusText = kv['grpc-status'] ?? res.headers.get('grpc-status') ?? undefined;
    if (statusText === undefined) return failure('response_malformed', 'gRPC-Web answer without grpc-status');
    return {
      status: Number(statusText),
      message: decodeGrpcMessage(kv['grpc-message'] ?? res.headers.get('grpc-message') ?? ''),
      frames: decoded.frames,
    };
  }

  close(): Promise<void> {
    const s = this.session;
    this.session = undefined;
    if (s === undefined || s.closed) return Promise.resolve();
    return new Promise((resolve) => s.close(() => resolve()));
  }
}
