/**
 * Relays for the miner bench, built before anything is timed: mined relays shaped like the ones
 * the relayer publishes (Relay{request with a ring signature of the length the localnet gateway
 * produces, signed response without payload}), distinct per relay (fresh signature bytes and
 * JSON-RPC id), wrapped in the MinedRelayMessage the stream carries.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import {
  decodeRelayRequest,
  encodePoktHttpRequest,
  mineRelay,
  type RelayRequest,
  type RelayResponse,
  type SessionHeader,
} from '../../protocol/index.js';
import { encodeMinedRelayMessage } from '../../transport/index.js';
import { APP, SUPPLIER } from '../../test/e2e/localnet-fixtures.js';
import { jsonRpcBody, signRelayRequests } from '../relayer/relay-requests.js';

export const SERVICE_ID = 'anvil';
export const APPLICATION = APP.address;
export const COMPUTE_UNITS_PER_RELAY = 100n;
export const SESSION_START_HEIGHT = 91;
export const SESSION_END_HEIGHT = 100;

export interface BenchRelay {
  sessionId: string;
  hash: Uint8Array;
  bytes: Uint8Array;
  /** The `data` field of the stream entry. */
  entry: Buffer;
}

/** A session id as the chain derives them: 64 hex digits. */
export function sessionId(): string {
  return randomBytes(32).toString('hex');
}

/** A supplier operator address of bech32 length, distinct per index. */
export function supplierAddress(i: number): string {
  const base = SUPPLIER.address;
  const tail = i.toString(36).padStart(6, '0');
  return base.slice(0, base.length - tail.length) + tail;
}

function header(session: string): SessionHeader {
  return {
    applicationAddress: APPLICATION,
    serviceId: SERVICE_ID,
    sessionId: session,
    sessionStartBlockHeight: BigInt(SESSION_START_HEIGHT),
    sessionEndBlockHeight: BigInt(SESSION_END_HEIGHT),
  };
}

let ringSignatureBytes: number | undefined;

/** Length of a ring signature the localnet gateway makes for a two-member ring (signed once). */
function ringSignatureLength(): number {
  if (ringSignatureBytes === undefined) {
    const [signed] = signRelayRequests(header(sessionId()), 1);
    const decoded = decodeRelayRequest(signed!);
    if (!decoded.ok || decoded.value.meta === undefined)
      throw new Error('bench: could not decode a signed relay');
    ringSignatureBytes = decoded.value.meta.signature.length;
  }
  return ringSignatureBytes;
}

/** One mined relay of `session` for `supplier`; `i` varies the JSON-RPC id. */
export function buildRelay(supplier: string, session: string, i: number): BenchRelay {
  const h = header(session);
  const body = jsonRpcBody(i);
  const req: RelayRequest = {
    meta: {
      sessionHeader: h,
      signature: randomBytes(ringSignatureLength()),
      supplierOperatorAddress: supplier,
    },
    payload: Buffer.from(
      encodePoktHttpRequest({
        method: 'POST',
        url: '/',
        headers: [['Content-Type', ['application/json']]],
        body,
      }),
    ),
  };
  const backendReply = Buffer.from(`{"jsonrpc":"2.0","id":${i + 1},"result":"0x${(i + 1).toString(16)}"}`);
  const res: RelayResponse = {
    meta: { sessionHeader: h, supplierOperatorSignature: randomBytes(64) },
    payload: backendReply,
    payloadHash: createHash('sha256').update(backendReply).digest(),
    relayMinerError: undefined,
  };
  const mined = mineRelay(req, res);
  const entry = Buffer.from(
    encodeMinedRelayMessage({
      relay_hash: mined.hash,
      relay_bytes: mined.bytes,
      compute_units_per_relay: COMPUTE_UNITS_PER_RELAY,
      session_id: session,
      session_end_height: SESSION_END_HEIGHT,
      supplier_operator_address: supplier,
      service_id: SERVICE_ID,
      application_address: APPLICATION,
      arrival_block_height: SESSION_START_HEIGHT + 3,
      published_at_unix_nano: BigInt(Date.now()) * 1_000_000n,
      session_start_height: SESSION_START_HEIGHT,
    }),
  );
  return { sessionId: session, hash: mined.hash, bytes: mined.bytes, entry };
}

/** `count` relays of one supplier spread round-robin over `sessions` (the order the stream gets them). */
export function buildRelays(supplier: string, sessions: readonly string[], count: number): BenchRelay[] {
  return Array.from({ length: count }, (_, i) => buildRelay(supplier, sessions[i % sessions.length]!, i));
}

/** XADD of every entry (pipelined, `chunk` per request), as the relayer's publisher writes them. */
export async function publishEntries(
  redis: Redis,
  stream: string,
  entries: readonly Buffer[],
  chunk = 1_000,
): Promise<void> {
  for (let i = 0; i < entries.length; i += chunk) {
    const pipe = redis.pipeline();
    for (const e of entries.slice(i, i + chunk)) pipe.xadd(stream, 'MAXLEN', '~', '1000000', '*', 'data', e);
    const replies = await pipe.exec();
    for (const [err] of replies ?? []) if (err !== null) throw err;
  }
}

/** Runs `fn` over `items`, at most `limit` at once. */
export async function forEachLimit<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
