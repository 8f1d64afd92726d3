import { describe, expect, it } from 'vitest';
import { InvalidInputError, bytesToHex, concatBytes, hexToBytes } from '../core/index.js';
import {
  decodePoktHttpRequest,
  decodePoktHttpResponse,
  decodeRelay,
  decodeRelayRequest,
  decodeRelayResponse,
  encodePoktHttpRequest,
  encodePoktHttpResponse,
  encodeRelay,
  encodeRelayRequest,
  encodeRelayResponse,
  relayRequestSignableBytes,
  relayResponseSignableBytes,
  sessionHeadersEqual,
  withPayloadHash,
  withSupplierSignature,
} from './relay.js';
import { sha256 } from './hash.js';
import type { RelayRequest, RelayResponse } from './proto/gen/pocket/service/relay.js';
import { seededRandom } from '../test/helpers/prng.js';

const header = {
  applicationAddress: 'pokt18mp59p6tyg0vmz0rdmedsahjvnzv2wd7dj573f',
  serviceId: 'eth',
  sessionId: 'abc',
  sessionStartBlockHeight: 100n,
  sessionEndBlockHeight: 110n,
};

function request(over: Partial<RelayRequest> = {}): RelayRequest {
  return {
    meta: { sessionHeader: header, signature: Buffer.from([9, 9]), supplierOperatorAddress: 'pokt1sup' },
    payload: Buffer.from('{"id":1}'),
    ...over,
  };
}

describe('gogoproto encoding rules', () => {
  it('always writes the non-nullable meta, as 0a 00 when empty', () => {
    expect(bytesToHex(encodeRelayRequest({ meta: undefined, payload: Buffer.from([1]) }))).toBe('0a00120101');
    expect(
      bytesToHex(
        encodeRelayResponse({
          meta: undefined,
          payload: Buffer.alloc(0),
          payloadHash: Buffer.alloc(0),
          relayMinerError: undefined,
        }),
      ),
    ).toBe('0a00');
    // Inside a Relay too.
    expect(
      bytesToHex(encodeRelay({ req: { meta: undefined, payload: Buffer.alloc(0) }, res: undefined })),
    ).toBe('0a020a00');
  });

  it('omits zero-valued fields instead of writing them explicitly', () => {
    const bytes = encodeRelayRequest({
      meta: {
        sessionHeader: { ...header, sessionStartBlockHeight: 0n, sessionEndBlockHeight: 0n, sessionId: '' },
        signature: Buffer.alloc(0),
        supplierOperatorAddress: '',
      },
      payload: Buffer.alloc(0),
    });
    const hdr = '0a2b' + Buffer.from(header.applicationAddress).toString('hex') + '1203657468';
    expect(bytesToHex(bytes)).toBe(
      `0a${(hdr.length / 2 + 2).toString(16).padStart(2, '0')}0a${(hdr.length / 2).toString(16)}${hdr}`,
    );
  });

  it('writes int64 heights above 2^53 exactly and negative heights as 10-byte varints', () => {
    const big = encodeRelayRequest(
      request({
        meta: { ...request().meta!, sessionHeader: { ...header, sessionStartBlockHeight: 2n ** 60n + 1n } },
      }),
    );
    const back = decodeRelayRequest(big);
    expect(back.ok && back.value.meta!.sessionHeader!.sessionStartBlockHeight).toBe(2n ** 60n + 1n);
    const neg = encodeRelayRequest({
      meta: {
        sessionHeader: {
          ...header,
          applicationAddress: '',
          serviceId: '',
          sessionId: '',
          sessionStartBlockHeight: -1n,
          sessionEndBlockHeight: 0n,
        },
        signature: Buffer.alloc(0),
        supplierOperatorAddress: '',
      },
      payload: Buffer.alloc(0),
    });
    expect(bytesToHex(neg)).toBe('0a0d0a0b20ffffffffffffffffff01');
  });

  it('drops unknown fields on decode, so they never enter the signed bytes', () => {
    const canonical = encodeRelayRequest(request());
    const withUnknown = concatBytes(canonical, hexToBytes('7a03616263'), hexToBytes('a00601'));
    const dec = decodeRelayRequest(withUnknown);
    expect(dec.ok).toBe(true);
    if (dec.ok) expect(bytesToHex(encodeRelayRequest(dec.value))).toBe(bytesToHex(canonical));
  });

  it('request signable bytes are the request without the signature', () => {
    const req = request();
    expect(bytesToHex(relayRequestSignableBytes(req))).toBe(
      bytesToHex(encodeRelayRequest({ ...req, meta: { ...req.meta!, signature: Buffer.alloc(0) } })),
    );
  });

  it('response signable bytes drop the payload only when payload_hash is set', () => {
    const base: RelayResponse = {
      meta: { sessionHeader: header, supplierOperatorSignature: Buffer.from([7]) },
      payload: Buffer.from('ok'),
      payloadHash: Buffer.alloc(0),
      relayMinerError: undefined,
    };
    const legacy = relayResponseSignableBytes(base);
    expect(bytesToHex(legacy)).toBe(
      bytesToHex(
        encodeRelayResponse({
          ...base,
          meta: { sessionHeader: header, supplierOperatorSignature: Buffer.alloc(0) },
        }),
      ),
    );
    const hashed = withPayloadHash(base);
    expect(bytesToHex(hashed.payloadHash)).toBe(bytesToHex(sha256(Buffer.from('ok'))));
    expect(bytesToHex(relayResponseSignableBytes(hashed))).toBe(
      bytesToHex(
        encodeRelayResponse({
          ...hashed,
          payload: Buffer.alloc(0),
          meta: { sessionHeader: header, supplierOperatorSignature: Buffer.alloc(0) },
        }),
      ),
    );
    const signed = withSupplierSignature(hashed, new Uint8Array(64).fill(1));
    expect(bytesToHex(signed.meta!.supplierOperatorSignature)).toBe('01'.repeat(64));
  });

  it('refuses to hash an empty payload, like upstream', () => {
    expect(() =>
      withPayloadHash({
        meta: undefined,
        payload: Buffer.alloc(0),
        payloadHash: Buffer.alloc(0),
        relayMinerError: undefined,
      }),
    ).toThrow(InvalidInputError);
  });

  it('compares all five session header fields', () => {
    expect(sessionHeadersEqual(header, { ...header })).toBe(true);
    for (const k of Object.keys(header) as (keyof typeof header)[]) {
      const other = { ...header, [k]: typeof header[k] === 'bigint' ? 999n : 'x' };
      expect(sessionHeadersEqual(header, other)).toBe(false);
    }
    expect(sessionHeadersEqual(undefined, header)).toBe(false);
    expect(sessionHeadersEqual(undefined, undefined)).toBe(true);
  });
});

describe('malformed protobuf is a typed result, never an exception', () => {
  const good = encodeRelayRequest(request());
  const cases: [string, string, RegExp][] = [
    ['field number 0', '0001', /illegal field number 0/],
    ['truncated varint tag', '80', /truncated varint/],
    ['varint longer than 10 bytes', '78ffffffffffffffffffffff01', /longer than 10 bytes/],
    ['length past the end', '0a05', /runs past the message end/],
    ['known field with the wrong wire type', '0801', /RelayRequest\.meta: wrong wire type 0/],
    ['nested length overrunning its parent', '0a030a0541', /runs past the message end/],
    ['group start', '7b', /groups are not accepted/],
    ['illegal wire type 7', '7f', /illegal wire type 7/],
    ['truncated fixed64 in an unknown field', '19000000', /truncated fixed64/],
    ['invalid UTF-8 in a string field', '0a041a02c328', /supplier_operator_address: not valid UTF-8/],
    ['meta twice', '0a000a00', /meta: message field occurs twice/],
    [
      'session header with a wrong wire type for a height',
      '0a040a022201',
      /session_start_block_height: wrong wire type 2/,
    ],
  ];
  for (const [name, hex, reason] of cases) {
    it(name, () => {
      const r = decodeRelayRequest(hexToBytes(hex));
      expect(r.ok).toBe(false);
      if (!r.ok) {
        expect(r.code).toBe('PROTO_MALFORMED');
        expect(r.reason).toMatch(reason);
      }
    });
  }

  it('an empty input is a valid, empty request (as in Go)', () => {
    const r = decodeRelayRequest(new Uint8Array(0));
    expect(r).toEqual({
      ok: true,
      value: {
        meta: { sessionHeader: undefined, signature: Buffer.alloc(0), supplierOperatorAddress: '' },
        payload: Buffer.alloc(0),
      },
    });
  });

  it('responses and relays reject the same way', () => {
    expect(decodeRelayResponse(hexToBytes('2205'))).toMatchObject({ ok: false, code: 'PROTO_MALFORMED' });
    expect(decodeRelay(hexToBytes('0a020a05'))).toMatchObject({ ok: false, code: 'PROTO_MALFORMED' });
    expect(decodePoktHttpRequest(hexToBytes('1203'))).toMatchObject({ ok: false, code: 'PROTO_MALFORMED' });
    expect(decodePoktHttpResponse(hexToBytes('08'))).toMatchObject({ ok: false, code: 'PROTO_MALFORMED' });
  });

  it('survives 20,000 random and mutated inputs without throwing', () => {
    const rnd = seededRandom(0x12345678);
    const decoders = [
      decodeRelayRequest,
      decodeRelayResponse,
      decodeRelay,
      decodePoktHttpRequest,
      decodePoktHttpResponse,
    ];
    let accepted = 0;
    for (let i = 0; i < 20_000; i++) {
      let input: Uint8Array;
      if (i % 2 === 0) {
        input = Uint8Array.from({ length: Math.floor(rnd() * 64) }, () => Math.floor(rnd() * 256));
      } else {
        input = Uint8Array.from(good);
        const flips = 1 + Math.floor(rnd() * 4);
        for (let f = 0; f < flips; f++) input[Math.floor(rnd() * input.length)] = Math.floor(rnd() * 256);
        if (rnd() < 0.3) input = input.subarray(0, Math.floor(rnd() * input.length));
      }
      for (const decode of decoders) {
        const r = decode(input);
        if (r.ok) accepted++;
        else expect(r.code).toBe('PROTO_MALFORMED');
      }
    }
    // Both outcomes occur: the fuzzer reaches valid encodings as well as rejections.
    expect(accepted).toBeGreaterThan(0);
    expect(accepted).toBeLessThan(100_000);
  });
});

describe('HTTP payload envelopes', () => {
  it('writes headers in Go deterministic map order (keys sorted bytewise) and round-trips', () => {
    const env = {
      statusCode: 200,
      headers: [
        ['X-b', ['2']],
        ['Content-Type', ['application/json']],
        ['A', ['1', '3']],
        ['', ['dropped']],
      ] as [string, string[]][],
      body: Buffer.from('{}'),
    };
    const bytes = encodePoktHttpResponse(env);
    const entry = (k: string, vals: string[]): string => {
      const key = Buffer.from(k).toString('hex');
      const values = vals
        .map((v) => '12' + v.length.toString(16).padStart(2, '0') + Buffer.from(v).toString('hex'))
        .join('');
      const header = '0a' + k.length.toString(16).padStart(2, '0') + key + values;
      const value = '12' + (header.length / 2).toString(16).padStart(2, '0') + header;
      const e = '0a' + k.length.toString(16).padStart(2, '0') + key + value;
      return '12' + (e.length / 2).toString(16).padStart(2, '0') + e;
    };
    expect(bytesToHex(bytes)).toBe(
      '08c801' +
        entry('A', ['1', '3']) +
        entry('Content-Type', ['application/json']) +
        entry('X-b', ['2']) +
        '1a027b7d',
    );
    const back = decodePoktHttpResponse(bytes);
    expect(back.ok && [...back.value.header.keys()]).toEqual(['A', 'Content-Type', 'X-b']);
    const req = encodePoktHttpRequest({
      method: 'POST',
      url: '/v1',
      headers: [
        ['b', ['x']],
        ['a', ['y']],
      ],
      body: Buffer.from('q'),
    });
    const reqBack = decodePoktHttpRequest(req);
    expect(
      reqBack.ok && {
        method: reqBack.value.method,
        url: reqBack.value.url,
        keys: [...reqBack.value.header.keys()],
        body: reqBack.value.bodyBz.toString(),
      },
    ).toEqual({
      method: 'POST',
      url: '/v1',
      keys: ['a', 'b'],
      body: 'q',
    });
  });
});
