/**
 * Builds protocol objects from the fields of relay-requests.json / relay-responses.json cases,
 * so every test that starts from the vectors' fields builds them the same way.
 */
import { hexToBytes } from '../../core/index.js';
import type { RelayResponse, SessionHeader } from '../../protocol/index.js';
import { asBigInt } from './vectors.js';

export function sessionHeaderFromVector(h: any): SessionHeader {
  return {
    applicationAddress: h.application_address,
    serviceId: h.service_id,
    sessionId: h.session_id,
    sessionStartBlockHeight: asBigInt(h.session_start_block_height),
    sessionEndBlockHeight: asBigInt(h.session_end_block_height),
  };
}

/** The response of a positive relay-responses.json case before payload hash and signature. */
export function unsignedResponseFromVector(c: any): RelayResponse {
  const e = c.relay_miner_error;
  return {
    meta: {
      sessionHeader: sessionHeaderFromVector(c.session_header),
      supplierOperatorSignature: Buffer.alloc(0),
    },
    payload: Buffer.from(hexToBytes(c.payload_hex)),
    payloadHash: Buffer.alloc(0),
    relayMinerError:
      e === null || e === undefined
        ? undefined
        : { codespace: e.codespace, code: Number(e.code), description: e.description, message: e.message },
  };
}
