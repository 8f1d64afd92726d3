/**
 * The gateway side of a relay (gateway.md): build a RelayRequest and ring-sign it as a gateway
 * (or the application itself) over the app's expected ring, and check a RelayResponse the way
 * PATH does — session header equal to the request's, payload hash, supplier signature — plus the
 * split of a streamed answer into its signed batches.
 */
import {
  decodePoktHttpResponse,
  decodeRelayResponse,
  relayRequestSignableHash,
  relayResponseSignableHash,
  sessionHeadersEqual,
  sha256,
  supplierSignatureDigest,
  type RelayRequest,
  type RelayResponse,
  type SessionHeader,
} from '../protocol/index.js';
import { signRingSignature } from './blsag.js';
import type { EcBackend } from './ec-backend.js';

export interface GatewayRelayInput {
  header: SessionHeader;
  supplierOperatorAddress: string;
  /** Serialized POKTHTTPRequest (HTTP family) or raw frame bytes (WebSocket). */
  payload: Uint8Array;
  /** Public keys of the expected ring, in ring order. */
  ringPublicKeys: readonly Uint8Array[];
  /** Index of the signer's key in the ring. */
  signerIndex: number;
  signerPrivateKey: Uint8Array;
}

/** A RelayRequest with its ring signature in place. */
export function signGatewayRelayRequest<P>(backend: EcBackend<P>, input: GatewayRelayInput): RelayRequest {
  const unsigned: RelayRequest = {
    meta: {
      sessionHeader: input.header,
      signature: Buffer.alloc(0),
      supplierOperatorAddress: input.supplierOperatorAddress,
    },
    payload: Buffer.from(input.payload),
  };
  const sig = signRingSignature(
    backend,
    input.ringPublicKeys,
    input.signerIndex,
    input.signerPrivateKey,
    relayRequestSignableHash(unsigned),
  );
  return { ...unsigned, meta: { ...unsigned.meta!, signature: Buffer.from(sig) } };
}

export type ResponseCheckCode =
  | 'RESPONSE_MALFORMED'
  | 'RESPONSE_HEADER_MISMATCH'
  | 'RESPONSE_PAYLOAD_HASH_MISMATCH'
  | 'RESPONSE_SIGNATURE_INVALID'
  | 'RESPONSE_PAYLOAD_MALFORMED';

export type ResponseCheck =
  { ok: true; response: RelayResponse } | { ok: false; code: ResponseCheckCode; reason: string };

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Verifies a RelayResponse as a gateway does: strict decode, session header equal to the one the
 * request carried (when given), payload_hash = SHA-256(payload), and the supplier's signature
 * over the signable hash with the supplier's public key.
 */
export function verifyRelayResponse<P>(
  backend: EcBackend<P>,
  bytes: Uint8Array,
  supplierPublicKey: Uint8Array,
  expectedHeader?: SessionHeader,
): ResponseCheck {
  const d = decodeRelayResponse(bytes);
  if (!d.ok) return { ok: false, code: 'RESPONSE_MALFORMED', reason: d.reason };
  const res = d.value;
  if (expectedHeader !== undefined && !sessionHeadersEqual(res.meta?.sessionHeader, expectedHeader)) {
    return { ok: false, code: 'RESPONSE_HEADER_MISMATCH', reason: 'session header differs from the request' };
  }
  if (!bytesEqual(res.payloadHash, sha256(res.payload))) {
    return {
      ok: false,
      code: 'RESPONSE_PAYLOAD_HASH_MISMATCH',
      reason: 'payload hash is not SHA-256 of the payload',
    };
  }
  const sig = res.meta?.supplierOperatorSignature ?? new Uint8Array(0);
  const digest = supplierSignatureDigest(relayResponseSignableHash(res));
  let valid: boolean;
  try {
    valid = sig.length === 64 && backend.ecdsaVerify(sig, digest, supplierPublicKey);
  } catch {
    valid = false;
  }
  if (!valid)
    return { ok: false, code: 'RESPONSE_SIGNATURE_INVALID', reason: 'supplier signature does not verify' };
  return { ok: true, response: res };
}

/** Verifies a response and decodes its POKTHTTPResponse payload (HTTP family relays). */
export function verifyHttpRelayResponse<P>(
  backend: EcBackend<P>,
  bytes: Uint8Array,
  supplierPublicKey: Uint8Array,
  expectedHeader?: SessionHeader,
):
  | { ok: true; response: RelayResponse; status: number; headers: Map<string, string[]>; body: Uint8Array }
  | { ok: false; code: ResponseCheckCode; reason: string } {
  const checked = verifyRelayResponse(backend, bytes, supplierPublicKey, expectedHeader);
  if (!checked.ok) return checked;
  const inner = decodePoktHttpResponse(checked.response.payload);
  if (!inner.ok) return { ok: false, code: 'RESPONSE_PAYLOAD_MALFORMED', reason: inner.reason };
  const headers = new Map<string, string[]>();
  for (const [k, h] of inner.value.header) headers.set(k, h.values);
  return {
    ok: true,
    response: checked.response,
    status: inner.value.statusCode,
    headers,
    body: inner.value.bodyBz,
  };
}

/** `||POKT_STREAM||`, written after every signed batch of a streamed answer. */
export const POKT_STREAM_DELIMITER: Uint8Array = new TextEncoder().encode('||POKT_STREAM||');

/** Splits a streamed answer into its batches; `rest` is an incomplete tail (no delimiter yet). */
export function splitStreamBatches(buf: Uint8Array): { batches: Uint8Array[]; rest: Uint8Array } {
  const batches: Uint8Array[] = [];
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  let start = 0;
  for (;;) {
    const i = b.indexOf(POKT_STREAM_DELIMITER, start);
    if (i === -1) break;
    batches.push(b.subarray(start, i));
    start = i + POKT_STREAM_DELIMITER.length;
  }
  return { batches, rest: b.subarray(start) };
}
