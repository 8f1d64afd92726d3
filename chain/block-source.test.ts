import { describe, expect, it } from 'vitest';
import { fromRfc3339WithNanoseconds } from '@cosmjs/tendermint-rpc';
import { blockEventFrom, parseSubscriptionMessage, websocketUrlFor } from './block-source.js';

describe('websocketUrlFor', () => {
  it('maps the RPC URL to its /websocket endpoint', () => {
    expect(
      ['http://127.0.0.1:26657', 'http://127.0.0.1:26657/', 'https://rpc.example:443/pocket/'].map(
        websocketUrlFor,
      ),
    ).toEqual([
      'ws://127.0.0.1:26657/websocket',
      'ws://127.0.0.1:26657/websocket',
      'wss://rpc.example/pocket/websocket',
    ]);
    expect(() => websocketUrlFor('ftp://x')).toThrowError(
      expect.objectContaining({ code: 'CHAIN_CONFIG_INVALID' }),
    );
  });
});

describe('parseSubscriptionMessage', () => {
  const event = (height: unknown, type = 'tendermint/event/NewBlockHeader'): string =>
    JSON.stringify({
      jsonrpc: '2.0',
      id: 3,
      result: {
        query: "tm.event='NewBlockHeader'",
        data: { type, value: { header: { height } } },
        events: {},
      },
    });

  it('recognises the ack, header events and everything else', () => {
    expect(parseSubscriptionMessage('{"jsonrpc":"2.0","id":3,"result":{}}', 3)).toBe('ack');
    expect(parseSubscriptionMessage('{"jsonrpc":"2.0","id":4,"result":{}}', 3)).toBeUndefined();
    expect(parseSubscriptionMessage(event('123'), 3)).toBe(123);
    expect(parseSubscriptionMessage(event('7', 'tendermint/event/Tx'), 3)).toBeUndefined();
    expect(parseSubscriptionMessage('not json', 3)).toBeUndefined();
  });

  it('throws on a refused subscription or a bad height', () => {
    expect(() =>
      parseSubscriptionMessage(
        '{"jsonrpc":"2.0","id":3,"error":{"code":-32603,"message":"max subscriptions"}}',
        3,
      ),
    ).toThrowError(expect.objectContaining({ code: 'CHAIN_RESPONSE_MALFORMED' }));
    expect(() => parseSubscriptionMessage(event('-1'), 3)).toThrowError(
      expect.objectContaining({ code: 'CHAIN_RESPONSE_MALFORMED' }),
    );
  });
});

describe('blockEventFrom', () => {
  it('keeps nanosecond time and the uppercase hash', () => {
    const hash = Uint8Array.from({ length: 32 }, (_, i) => i);
    expect(blockEventFrom(9, hash, fromRfc3339WithNanoseconds('2026-11-23T09:00:00.123456789Z'))).toEqual({
      height: 9,
      hash,
      hashHex: '000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F',
      time: '2026-11-23T09:00:00.123456789Z',
      timeUnixNs: (BigInt(Date.UTC(2026, 10, 23, 9, 0, 0)) * 1_000_000_000n) / 1000n + 123_456_789n,
    });
    expect(() =>
      blockEventFrom(9, new Uint8Array(31), fromRfc3339WithNanoseconds('2026-11-23T09:00:00Z')),
    ).toThrowError(expect.objectContaining({ code: 'CHAIN_RESPONSE_MALFORMED' }));
  });
});
