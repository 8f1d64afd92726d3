/** Option validation of `relay`: defaults, payloads per RPC type and the errors bad input gets. */
import { describe, expect, it } from 'vitest';
import { parseRelayOptions, type RelayCliOptions } from './cli.js';
import { buildPayload } from './client.js';
import { decodePoktHttpRequest } from '../../protocol/index.js';

const APP = 'pokt1jcfv7s7y0f8re2khpghjlyvn2khf6mxhnhz864';

function opts(o: Partial<RelayCliOptions> = {}): RelayCliOptions {
  return {
    node: 'http://127.0.0.1:26657',
    app: APP,
    gatewayKeyFile: '/tmp/gw.hex',
    service: 'anvil',
    supplier: APP,
    url: 'http://127.0.0.1:8545',
    ...o,
  };
}

function errorOf(o: Partial<RelayCliOptions>): string {
  try {
    parseRelayOptions(opts(o));
  } catch (err) {
    return `${(err as { exitCode: number }).exitCode} ${(err as Error).message}`;
  }
  return 'no error';
}

describe('parseRelayOptions', () => {
  it('defaults follow PATH (10 s timeout, 1 retry within 500 ms, no hedge) for one JSON-RPC relay', () => {
    const c = parseRelayOptions(opts());
    expect({
      rpcType: c.rpcType,
      mode: c.mode,
      timeoutMs: c.timeoutMs,
      retries: c.retries,
      retryWithinMs: c.retryWithinMs,
      hedgeMs: c.hedgeMs,
      concurrency: c.concurrency,
      keyFile: c.keyFile,
    }).toEqual({
      rpcType: 'jsonrpc',
      mode: 'single',
      timeoutMs: 10_000,
      retries: 1,
      retryWithinMs: 500,
      hedgeMs: 0,
      concurrency: 1,
      keyFile: { path: '/tmp/gw.hex', role: 'gateway' },
    });
    const load = parseRelayOptions(opts({ loadTest: true, duration: '1.5', rps: '20' }));
    expect([load.mode, load.concurrency, load.durationMs, load.rps, load.count]).toEqual([
      'load_test',
      8,
      1500,
      20,
      undefined,
    ]);
  });

  it('bad input is named with exit code 2', () => {
    expect(errorOf({ rpcType: 'xml' })).toBe(
      "2 --rpc-type: unknown RPC type 'xml'; expected one of jsonrpc, rest, cometbft, websocket, grpc, grpc-web, sse",
    );
    expect(errorOf({ node: 'localhost:26657' })).toBe(
      "2 --node: 'localhost:26657' must use http:// or https:// or tcp://",
    );
    expect(errorOf({ url: undefined })).toBe('2 --url is required');
    expect(errorOf({ count: '0', loadTest: true })).toBe("2 --count: expected an integer ≥ 1, got '0'");
    expect(errorOf({ count: '5' })).toBe('2 --count, --duration and --rps need --load-test');
    expect(errorOf({ rpcType: 'grpc' })).toBe(
      '2 --path: the gRPC method to call is required for --rpc-type grpc (e.g. /pkg.Service/Method)',
    );
    expect(errorOf({ dataHex: 'abc' })).toBe('2 --data-hex: not an even-length hex string');
    expect(errorOf({ header: ['nocolon'] })).toBe("2 --header: expected 'Name: value', got 'nocolon'");
    expect(errorOf({ supplierPubkey: '02ab' })).toBe(
      '2 --supplier-pubkey: expected a 33-byte compressed secp256k1 key as 66 hex characters',
    );
    expect(errorOf({ healthCheck: true, loadTest: true, count: '1' })).toBe(
      '2 --health-check, --subscribe and --load-test exclude each other',
    );
  });
});

describe('buildPayload', () => {
  it('REST keeps the method, path and query; JSON-RPC is a POST with an empty URL', () => {
    const rest = decodePoktHttpRequest(
      buildPayload('rest', {
        method: 'GET',
        path: '/v1/q?a=1',
        body: new Uint8Array(),
        headers: { 'X-A': 'b' },
      }),
    );
    expect(rest.ok && [rest.value.method, rest.value.url, [...rest.value.header.keys()].sort()]).toEqual([
      'GET',
      '/v1/q?a=1',
      ['Content-Type', 'X-A'],
    ]);
    const rpc = decodePoktHttpRequest(
      buildPayload('jsonrpc', { method: 'GET', path: '/ignored', body: Buffer.from('{}'), headers: {} }),
    );
    expect(rpc.ok && [rpc.value.method, rpc.value.url, Buffer.from(rpc.value.bodyBz).toString()]).toEqual([
      'POST',
      '',
      '{}',
    ]);
    expect(
      Buffer.from(
        buildPayload('websocket', { method: 'POST', path: '/', body: Buffer.from('x'), headers: {} }),
      ),
    ).toEqual(Buffer.from('x'));
  });
});
