/**
 * HTTP relays (JSON-RPC, REST, CometBFT, SSE/NDJSON streams) the way PATH sends them: POST of the
 * RelayRequest bytes with `Content-Type: application/json` and `Rpc-Type`, the answer one signed
 * RelayResponse, or a stream of signed batches each followed by `||POKT_STREAM||`, verified as
 * they arrive.
 */
import type { ReadableStream, ReadableStreamReadResult } from 'node:stream/web';
import { splitStreamBatches, type EcBackend } from '../../../rings/index.js';
import {
  checkHttpAnswer,
  failure,
  judgeBody,
  transportFailure,
  type AttemptResult,
  type OutgoingRelay,
  type RelayTransport,
} from './types.js';

export interface HttpTransportOptions {
  backend: EcBackend;
  /** Relayer URL the relay is POSTed to. */
  url: string;
  /** `Rpc-Type` header value. */
  rpcTypeHeader: string;
  /** Check the inner body for a JSON-RPC error. */
  jsonRpc: boolean;
  /** Responses larger than this are refused (PATH caps at 100 MB). */
  maxResponseBytes?: number;
}

export class HttpTransport implements RelayTransport {
  constructor(private readonly o: HttpTransportOptions) {}

  async send(relay: OutgoingRelay, signal: AbortSignal): Promise<AttemptResult> {
    let res: Response;
    try {
      res = await fetch(this.o.url, {
        method: 'POST',
        headers: {
          'Content-Type': 'application/json',
          'Rpc-Type': this.o.rpcTypeHeader,
          'Accept-Encoding': 'gzip',
        },
        body: relay.bytes,
        redirect: 'manual',
        signal,
      });
    } catch (err) {
      return transportFailure(err, signal);
    }
    try {
      if (res.status !== 200) {
        const text = (await res.text()).slice(0, 300);
        return failure(
          `relayer_http_${res.status}`,
          `the relayer answered ${res.status}: ${text}`,
          res.status >= 500,
        );
      }
      return await this.readAnswer(res, relay);
    } catch (err) {
      return transportFailure(err, signal);
    }
  }

  /** Reads the body, verifying every complete stream batch as soon as it is in. */
  private async readAnswer(res: Response, relay: OutgoingRelay): Promise<AttemptResult> {
    const max = this.o.maxResponseBytes ?? 100 * 1024 * 1024;
    let pending: Buffer = Buffer.alloc(0);
    let total = 0;
    const bodies: Uint8Array[] = [];
    let status = 200;
    let verified = 0;
    const reader = (res.body as ReadableStream<Uint8Array> | null)?.getReader();
    for (;;) {
      const chunk: ReadableStreamReadResult<Uint8Array> =
        reader === undefined ? { done: true, value: undefined } : await reader.read();
      if (chunk.done) break;
      total += chunk.value.length;
      if (total > max) {
        await reader?.cancel();
        return failure('response_too_large', `the answer is over ${max} bytes`);
      }
      pending = Buffer.concat([pending, chunk.value]);
      const { batches, rest } = splitStreamBatches(pending);
      for (const batch of batches) {
        const c = checkHttpAnswer(this.o.backend, batch, relay.ctx);
        if (!c.ok) {
          await reader?.cancel();
          return failure(c.reason, `stream batch ${verified + 1}: ${c.message}`);
        }
        verified++;
        if (verified === 1) status = c.status;
        bodies.push(c.body);
      }
      pending = Buffer.from(rest);
    }
    if (verified > 0) {
      if (pending.length > 0) {
        return failure('stream_truncated', `the stream ended inside a batch (${pending.length} bytes)`);
      }
      return judgeBody(status, Buffer.concat(bodies), verified, { jsonRpc: false });
    }
    const c = checkHttpAnswer(this.o.backend, pending, relay.ctx);
    if (!c.ok) return failure(c.reason, c.message);
    return judgeBody(c.status, c.body, 1, { jsonRpc: this.o.jsonRpc });
  }

  async close(): Promise<void> {}
}
