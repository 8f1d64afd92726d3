/**
 * Gateway side of the relayer bench: relay requests ring-signed by the localnet gateway for the
 * localnet application and supplier (signing is the gateway's cost, done before measuring), and
 * the gateway's check of an answer (supplier signature, session header, backend body).
 */
import { encodePoktHttpRequest, encodeRelayRequest, type SessionHeader } from '../../protocol/index.js';
import {
  expectedRingAddresses,
  selectBackend,
  signGatewayRelayRequest,
  verifyHttpRelayResponse,
} from '../../rings/index.js';
import { APP, GATEWAY, SUPPLIER } from '../../test/e2e/localnet-fixtures.js';

/** The session header as it crosses the IPC channel (heights as decimal strings). */
export interface WireSessionHeader {
  application_address: string;
  service_id: string;
  session_id: string;
  session_start_block_height: string;
  session_end_block_height: string;
}

export function sessionHeaderFromWire(h: WireSessionHeader): SessionHeader {
  return {
    applicationAddress: h.application_address,
    serviceId: h.service_id,
    sessionId: h.session_id,
    sessionStartBlockHeight: BigInt(h.session_start_block_height),
    sessionEndBlockHeight: BigInt(h.session_end_block_height),
  };
}

/** The JSON-RPC body of request `i` (the same bodies go to the bare pass-through). */
export function jsonRpcBody(i: number): Buffer {
  return Buffer.from(`{"jsonrpc":"2.0","id":${i + 1},"method":"eth_chainId"}`);
}

/** `count` distinct RelayRequests (eth_chainId, ids 1…count), serialized. */
export function signRelayRequests(header: SessionHeader, count: number): Uint8Array[] {
  const ec = selectBackend('native');
  const ring = expectedRingAddresses(
    APP.address,
    { delegateeGatewayAddresses: [GATEWAY.address], pendingUndelegations: new Map() },
    header.sessionEndBlockHeight,
  ).map((a) => (a === APP.address ? APP.publicKey : GATEWAY.publicKey));
  const signerIndex = ring.indexOf(GATEWAY.publicKey);
  const out: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const payload = encodePoktHttpRequest({
      method: 'POST',
      url: '/',
      headers: [['Content-Type', ['application/json']]],
      body: jsonRpcBody(i),
    });
    const request = signGatewayRelayRequest(ec, {
      header,
      supplierOperatorAddress: SUPPLIER.address,
      payload,
      ringPublicKeys: ring,
      signerIndex,
      signerPrivateKey: GATEWAY.privateKey,
    });
    out.push(encodeRelayRequest(request));
  }
  return out;
}

/** Throws unless `bytes` is a supplier-signed answer for `header` carrying the backend's eth_chainId. */
export function checkRelayAnswer(status: number, bytes: Uint8Array, header: SessionHeader): void {
  if (status !== 200) throw new Error(`relay answered ${status}: ${Buffer.from(bytes).toString('utf8')}`);
  const checked = verifyHttpRelayResponse(selectBackend('native'), bytes, SUPPLIER.publicKey, header);
  if (!checked.ok) throw new Error(`relay answer does not verify: ${checked.code} ${checked.reason}`);
  const body = Buffer.from(checked.body).toString('utf8');
  if (checked.status !== 200 || !body.includes('"result":"0x1"')) {
    throw new Error(`relay answer carries an unexpected backend reply: ${checked.status} ${body}`);
  }
}
