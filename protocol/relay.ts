/**
 * Relay messages on the wire: strict decoding, gogoproto-identical encoding, the bytes each
 * signature covers, the mined relay and its hash (relay-protocol.md §2, §3, §5, §6).
 */
import { InvalidInputError, compareBytes } from '../core/index.js';
import { sha256 } from './hash.js';
import { isRelayVolumeApplicable } from './difficulty.js';
import { checkWireFormat, type MessageSchema } from './proto/wire.js';
import {
  POKT_HTTP_REQUEST_SCHEMA,
  POKT_HTTP_RESPONSE_SCHEMA,
  RELAY_REQUEST_SCHEMA,
  RELAY_RESPONSE_SCHEMA,
  RELAY_SCHEMA,
} from './proto/schemas.js';
import type { RelayRequestMetadata, RelayResponseMetadata } from './proto/gen/pocket/service/relay.js';
import { Relay, RelayRequest, RelayResponse } from './proto/gen/pocket/service/relay.js';
import { POKTHTTPRequest, POKTHTTPResponse, type Header } from './proto/gen/sdk/types/http.js';
import type { SessionHeader } from './proto/gen/pocket/session/types.js';

const EMPTY = Buffer.alloc(0);

export type DecodeResult<T> = { ok: true; value: T } | { ok: false; code: 'PROTO_MALFORMED'; reason: string };

interface Codec<T> {
  decode(input: Uint8Array): T;
}

function strictDecode<T>(bytes: Uint8Array, schema: MessageSchema, codec: Codec<T>): DecodeResult<T> {
  const problem = checkWireFormat(bytes, schema);
  if (problem !== null) return { ok: false, code: 'PROTO_MALFORMED', reason: problem };
  try {
    return { ok: true, value: codec.decode(bytes) };
  } catch (err) {
    return { ok: false, code: 'PROTO_MALFORMED', reason: `${schema.name}: ${(err as Error).message}` };
  }
}

/** The zero value Go gives the non-nullable `meta` fields. */
function requestMeta(meta: RelayRequestMetadata | undefined): RelayRequestMetadata {
  return meta ?? { sessionHeader: undefined, signature: EMPTY, supplierOperatorAddress: '' };
}

function responseMeta(meta: RelayResponseMetadata | undefined): RelayResponseMetadata {
  return meta ?? { sessionHeader: undefined, supplierOperatorSignature: EMPTY };
}

/** The request as Go holds it after Unmarshal: `meta` always present. */
export function normalizeRelayRequest(req: RelayRequest): RelayRequest {
  return req.meta === undefined ? { ...req, meta: requestMeta(undefined) } : req;
}

export function normalizeRelayResponse(res: RelayResponse): RelayResponse {
  return res.meta === undefined ? { ...res, meta: responseMeta(undefined) } : res;
}

export function decodeRelayRequest(bytes: Uint8Array): DecodeResult<RelayRequest> {
  const r = strictDecode(bytes, RELAY_REQUEST_SCHEMA, RelayRequest);
  return r.ok ? { ok: true, value: normalizeRelayRequest(r.value) } : r;
}

export function decodeRelayResponse(bytes: Uint8Array): DecodeResult<RelayResponse> {
  const r = strictDecode(bytes, RELAY_RESPONSE_SCHEMA, RelayResponse);
  return r.ok ? { ok: true, value: normalizeRelayResponse(r.value) } : r;
}

export function decodeRelay(bytes: Uint8Array): DecodeResult<Relay> {
  const r = strictDecode(bytes, RELAY_SCHEMA, Relay);
  if (!r.ok) return r;
  const { req, res } = r.value;
  return {
    ok: true,
    value: {
      req: req === undefined ? undefined : normalizeRelayRequest(req),
      res: res === undefined ? undefined : normalizeRelayResponse(res),
    },
  };
}

/** gogoproto bytes of a RelayRequest: ascending fields, defaults omitted, `meta` always written. */
export function encodeRelayRequest(req: RelayRequest): Uint8Array {
  return RelayRequest.encode(normalizeRelayRequest(req)).finish();
}

export function encodeRelayResponse(res: RelayResponse): Uint8Array {
  return RelayResponse.encode(normalizeRelayResponse(res)).finish();
}

export function encodeRelay(relay: Relay): Uint8Array {
  return Relay.encode({
    req: relay.req === undefined ? undefined : normalizeRelayRequest(relay.req),
    res: relay.res === undefined ? undefined : normalizeRelayResponse(relay.res),
  }).finish();
}

/** The request with `meta.signature` removed: the bytes the ring signature covers. */
export function relayRequestSignableBytes(req: RelayRequest): Uint8Array {
  const meta = requestMeta(req.meta);
  return RelayRequest.encode({ ...req, meta: { ...meta, signature: EMPTY } }).finish();
}

/** SHA-256 of the signable bytes: the 32-byte message of the ring signature. */
export function relayRequestSignableHash(req: RelayRequest): Uint8Array {
  return sha256(relayRequestSignableBytes(req));
}

/**
 * The response with `meta.supplier_operator_signature` removed and, when `payload_hash` is set,
 * `payload` removed too: the bytes the supplier signature covers.
 */
export function relayResponseSignableBytes(res: RelayResponse): Uint8Array {
  const meta = responseMeta(res.meta);
  return RelayResponse.encode({
    ...res,
    meta: { ...meta, supplierOperatorSignature: EMPTY },
    payload: res.payloadHash.length > 0 ? EMPTY : res.payload,
  }).finish();
}

export function relayResponseSignableHash(res: RelayResponse): Uint8Array {
  return sha256(relayResponseSignableBytes(res));
}

/**
 * The digest the supplier key signs: the key hashes its 32-byte input again, so ECDSA runs over
 * SHA-256(signable hash).
 */
export function supplierSignatureDigest(signableHash: Uint8Array): Uint8Array {
  if (signableHash.length !== 32) {
    throw new InvalidInputError('signable hash', `must be 32 bytes, got ${signableHash.length}`);
  }
  return sha256(signableHash);
}

/** Sets payload_hash = SHA-256(payload); upstream refuses an empty payload, and so does this. */
export function withPayloadHash(res: RelayResponse): RelayResponse {
  if (res.payload.length === 0)
    throw new InvalidInputError('relay response payload', 'is empty; nothing to sign');
  return { ...res, payloadHash: Buffer.from(sha256(res.payload)) };
}

/** A response with its supplier signature in place. */
export function withSupplierSignature(res: RelayResponse, signature: Uint8Array): RelayResponse {
  const meta = responseMeta(res.meta);
  return { ...res, meta: { ...meta, supplierOperatorSignature: Buffer.from(signature) } };
}

/** The SMST leaf value: Relay{request as received, signed response with payload cleared}. */
export function minedRelayBytes(req: RelayRequest, signedRes: RelayResponse): Uint8Array {
  return encodeRelay({ req, res: { ...signedRes, payload: EMPTY } });
}

export interface MinedRelay {
  /** Leaf value. */
  bytes: Uint8Array;
  /** SHA-256(bytes): the SMST key. */
  hash: Uint8Array;
}

export function mineRelay(req: RelayRequest, signedRes: RelayResponse): MinedRelay {
  const bytes = minedRelayBytes(req, signedRes);
  return { bytes, hash: sha256(bytes) };
}

/** A mined relay counts toward rewards only if its hash is below the target at session start. */
export function isMinedRelayApplicable(relay: MinedRelay, target: Uint8Array): boolean {
  return isRelayVolumeApplicable(relay.hash, target);
}

/** True when all five fields of two session headers are equal. */
export function sessionHeadersEqual(a: SessionHeader | undefined, b: SessionHeader | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return (
    a.applicationAddress === b.applicationAddress &&
    a.serviceId === b.serviceId &&
    a.sessionId === b.sessionId &&
    a.sessionStartBlockHeight === b.sessionStartBlockHeight &&
    a.sessionEndBlockHeight === b.sessionEndBlockHeight
  );
}

/* ---------- HTTP payload envelopes ---------- */

export interface HttpEnvelope {
  method?: string;
  url?: string;
  statusCode?: number;
  /** Header name → values; names are kept as given. */
  headers: Iterable<readonly [string, readonly string[]]>;
  body: Uint8Array;
}

const utf8 = new TextEncoder();

/** Header entries in Go's deterministic map order (keys sorted bytewise); empty names dropped. */
function sortedHeaderMap(headers: Iterable<readonly [string, readonly string[]]>): Map<string, Header> {
  const entries = [...headers]
    .filter(([name]) => name.length > 0)
    .map(([name, values]) => ({ name, key: utf8.encode(name), values: [...values] }));
  entries.sort((a, b) => compareBytes(a.key, b.key));
  return new Map(entries.map((e) => [e.name, { key: e.name, values: e.values }]));
}

export function encodePoktHttpRequest(req: HttpEnvelope): Uint8Array {
  return POKTHTTPRequest.encode({
    method: req.method ?? '',
    header: sortedHeaderMap(req.headers),
    url: req.url ?? '',
    bodyBz: Buffer.from(req.body),
  }).finish();
}

export function encodePoktHttpResponse(res: HttpEnvelope): Uint8Array {
  return POKTHTTPResponse.encode({
    statusCode: res.statusCode ?? 0,
    header: sortedHeaderMap(res.headers),
    bodyBz: Buffer.from(res.body),
  }).finish();
}

export function decodePoktHttpRequest(bytes: Uint8Array): DecodeResult<POKTHTTPRequest> {
  return strictDecode(bytes, POKT_HTTP_REQUEST_SCHEMA, POKTHTTPRequest);
}

export function decodePoktHttpResponse(bytes: Uint8Array): DecodeResult<POKTHTTPResponse> {
  return strictDecode(bytes, POKT_HTTP_RESPONSE_SCHEMA, POKTHTTPResponse);
}
