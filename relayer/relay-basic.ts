/**
 * poktroll `RelayRequest.ValidateBasic` and `SessionHeader.ValidateBasic`: the stateless checks
 * every relay passes before anything is looked up. Shared by the relay validator (§4) and the
 * simulated-relay admission (§9).
 */
import { decodeAddress, type RelayRequest, type SessionHeader } from '../protocol/index.js';

/** Service ids as poktroll accepts them (letters, digits, `_`, `-`; at most 42 characters). */
const SERVICE_ID_RE = /^[a-zA-Z0-9_-]{1,42}$/;

export type RelayBasicCode =
  | 'RELAY_MISSING_SESSION_HEADER'
  | 'RELAY_INVALID_SESSION_HEADER'
  | 'RELAY_MISSING_SIGNATURE'
  | 'RELAY_MISSING_SUPPLIER_ADDRESS';

export interface RelayBasicProblem {
  code: RelayBasicCode;
  reason: string;
}

/** SessionHeader.ValidateBasic: what is wrong with the header, or undefined when nothing is. */
export function sessionHeaderProblem(h: SessionHeader): string | undefined {
  try {
    decodeAddress(h.applicationAddress);
  } catch {
    return `application address "${h.applicationAddress}" is not a pokt bech32 address`;
  }
  if (h.sessionId === '') return 'session id is empty';
  if (!SERVICE_ID_RE.test(h.serviceId)) return `service id "${h.serviceId}" is not a valid service id`;
  if (h.sessionStartBlockHeight <= 0n) return 'sessions can only start at height 1 or greater';
  if (h.sessionEndBlockHeight <= h.sessionStartBlockHeight)
    return 'session end height is not after its start';
  if (h.sessionEndBlockHeight > BigInt(Number.MAX_SAFE_INTEGER)) return 'session end height out of range';
  return undefined;
}

/**
 * RelayRequest.ValidateBasic: session header, then signature, then supplier operator address.
 * A request without meta reads as one without a session header (Go decodes `meta` as a zero
 * value). Every problem is a client error (400 on HTTP).
 */
export function relayRequestBasicProblem(request: RelayRequest): RelayBasicProblem | undefined {
  const meta = request.meta;
  const header = meta?.sessionHeader;
  if (meta === undefined || header === undefined) {
    return { code: 'RELAY_MISSING_SESSION_HEADER', reason: 'relay request meta has no session header' };
  }
  const problem = sessionHeaderProblem(header);
  if (problem !== undefined) {
    return { code: 'RELAY_INVALID_SESSION_HEADER', reason: `invalid session header: ${problem}` };
  }
  if (meta.signature.length === 0) {
    return { code: 'RELAY_MISSING_SIGNATURE', reason: 'relay request has no ring signature' };
  }
  if (meta.supplierOperatorAddress === '') {
    return {
      code: 'RELAY_MISSING_SUPPLIER_ADDRESS',
      reason: 'missing supplier operator address in relay request',
    };
  }
  return undefined;
}
