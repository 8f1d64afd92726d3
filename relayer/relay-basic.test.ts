import { describe, expect, it } from 'vitest';
import { addressFromPrivateKey, privateKeyFromSecret, type RelayRequest } from '../protocol/index.js';
import { relayRequestBasicProblem, sessionHeaderProblem } from './relay-basic.js';

const APP = addressFromPrivateKey(privateKeyFromSecret(new TextEncoder().encode('basic-app')));
const SUPPLIER = addressFromPrivateKey(privateKeyFromSecret(new TextEncoder().encode('basic-supplier')));

const HEADER = {
  applicationAddress: APP,
  serviceId: 'eth-mainnet_2',
  sessionId: 'abc',
  sessionStartBlockHeight: 1n,
  sessionEndBlockHeight: 2n,
};

function req(
  over: { header?: Partial<typeof HEADER>; signature?: number; supplier?: string } = {},
): RelayRequest {
  return {
    meta: {
      sessionHeader: { ...HEADER, ...over.header },
      signature: Buffer.alloc(over.signature ?? 10, 1),
      supplierOperatorAddress: over.supplier ?? SUPPLIER,
    },
    payload: Buffer.from('x'),
  };
}

describe('sessionHeaderProblem (SessionHeader.ValidateBasic)', () => {
  it('accepts a well-formed header and names each problem', () => {
    const cases: Partial<typeof HEADER>[] = [
      {},
      { serviceId: 'a'.repeat(42) },
      { applicationAddress: '' },
      { applicationAddress: 'cosmos1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq' },
      { applicationAddress: APP.slice(0, -1) },
      { sessionId: '' },
      { serviceId: '' },
      { serviceId: 'a'.repeat(43) },
      { serviceId: 'eth.mainnet' },
      { sessionStartBlockHeight: 0n },
      { sessionStartBlockHeight: -1n },
      { sessionEndBlockHeight: 1n },
      { sessionEndBlockHeight: 0n },
      { sessionEndBlockHeight: BigInt(Number.MAX_SAFE_INTEGER) },
      { sessionEndBlockHeight: BigInt(Number.MAX_SAFE_INTEGER) + 1n },
    ];
    expect(cases.map((c) => sessionHeaderProblem({ ...HEADER, ...c }))).toEqual([
      undefined,
      undefined,
      'application address "" is not a pokt bech32 address',
      'application address "cosmos1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq" is not a pokt bech32 address',
      `application address "${APP.slice(0, -1)}" is not a pokt bech32 address`,
      'session id is empty',
      'service id "" is not a valid service id',
      `service id "${'a'.repeat(43)}" is not a valid service id`,
      'service id "eth.mainnet" is not a valid service id',
      'sessions can only start at height 1 or greater',
      'sessions can only start at height 1 or greater',
      'session end height is not after its start',
      'session end height is not after its start',
      undefined,
      'session end height out of range',
    ]);
  });
});

describe('relayRequestBasicProblem (RelayRequest.ValidateBasic)', () => {
  it('accepts a well-formed request', () => {
    expect(relayRequestBasicProblem(req())).toBeUndefined();
  });

  it('checks header, then signature, then supplier address', () => {
    const noMeta: RelayRequest = { meta: undefined, payload: Buffer.alloc(0) };
    const noHeader: RelayRequest = { ...req(), meta: { ...req().meta!, sessionHeader: undefined } };
    expect(
      [
        noMeta,
        noHeader,
        req({ header: { sessionId: '' }, signature: 0, supplier: '' }),
        req({ signature: 0, supplier: '' }),
        req({ supplier: '' }),
      ].map(relayRequestBasicProblem),
    ).toEqual([
      { code: 'RELAY_MISSING_SESSION_HEADER', reason: 'relay request meta has no session header' },
      { code: 'RELAY_MISSING_SESSION_HEADER', reason: 'relay request meta has no session header' },
      { code: 'RELAY_INVALID_SESSION_HEADER', reason: 'invalid session header: session id is empty' },
      { code: 'RELAY_MISSING_SIGNATURE', reason: 'relay request has no ring signature' },
      {
        code: 'RELAY_MISSING_SUPPLIER_ADDRESS',
        reason: 'missing supplier operator address in relay request',
      },
    ]);
  });
});
