import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { decodePoktHttpResponse } from '../protocol/index.js';
import {
  SESSION_EXPIRED_ERROR,
  WS_CLOSE,
  WS_READ_LIMIT_BYTES,
  WebSocketBridgeMetrics,
  backendCloseFor,
  bridgeMetricsFor,
  backendFrameIsBinary,
  classifyDialError,
  closeCodeLabel,
  gatewayCloseForBackend,
  handshakeStatusText,
  isSendableCloseCode,
  rawDataBytes,
  resolveBridgeSettings,
  resolveServiceId,
  sessionExpiredPayload,
  truncateCloseReason,
} from './websocket-bridge.js';

describe('resolveServiceId', () => {
  const all = {
    'target-service-id': 'eth',
    'pocket-service-id': 'base',
    'x-forwarded-host': 'poly',
  };

  it('takes Target-Service-Id first', () => {
    expect(resolveServiceId({ headers: all, path: '/anvil' })).toBe('eth');
  });

  it('falls back to Pocket-Service-Id, then X-Forwarded-Host, then the first path segment', () => {
    expect(resolveServiceId({ headers: { ...all, 'target-service-id': '' }, path: '/anvil' })).toBe('base');
    expect(resolveServiceId({ headers: { 'x-forwarded-host': 'poly' }, path: '/anvil' })).toBe('poly');
    expect(resolveServiceId({ headers: {}, path: '/anvil/ws/extra' })).toBe('anvil');
    expect(resolveServiceId({ headers: {}, path: '//anvil' })).toBe('anvil');
  });

  it('ignores headers that are only whitespace and trims the rest', () => {
    expect(
      resolveServiceId({ headers: { 'target-service-id': '  ', 'pocket-service-id': ' eth ' }, path: '/' }),
    ).toBe('eth');
  });

  it('is empty when nothing names a service', () => {
    expect(resolveServiceId({ headers: {}, path: '/' })).toBe('');
    expect(resolveServiceId({ headers: {}, path: '' })).toBe('');
  });
});

describe('close codes', () => {
  it('knows which codes a close frame may carry', () => {
    const sendable = [
      1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4000, 4999,
    ];
    const never = [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000];
    expect(sendable.map(isSendableCloseCode)).toEqual(sendable.map(() => true));
    expect(never.map(isSendableCloseCode)).toEqual(never.map(() => false));
  });

  it('tells the backend what relayer.md §6.3 says for each gateway close', () => {
    expect(backendCloseFor(4000, 'session expired')).toEqual({ code: 1001, reason: 'session ended' });
    expect(backendCloseFor(4001, 'bad signature')).toEqual({ code: 1008, reason: 'request rejected' });
    expect(backendCloseFor(4002, 'over budget')).toEqual({ code: 1013, reason: 'rate limited' });
    expect(backendCloseFor(4003, 'dial failed')).toEqual({ code: 1011, reason: 'connection failed' });
    expect(backendCloseFor(1000, 'bye')).toEqual({ code: 1000, reason: 'bye' });
    expect(backendCloseFor(1001, 'server shutting down')).toEqual({
      code: 1001,
      reason: 'server shutting down',
    });
    expect(backendCloseFor(1009, 'message too big')).toEqual({ code: 1009, reason: 'message too big' });
    expect(backendCloseFor(1011, 'gateway not reading')).toEqual({
      code: 1011,
      reason: 'gateway not reading',
    });
    expect(backendCloseFor(1013, 'too many')).toEqual({ code: 1013, reason: 'too many' });
    expect(backendCloseFor(3005, 'app')).toEqual({ code: 3005, reason: 'app' });
  });

  it('turns codes that cannot be sent into a normal or going-away close for the backend', () => {
    expect(backendCloseFor(1005, '')).toEqual({ code: 1000, reason: '' });
    expect(backendCloseFor(1006, '')).toEqual({ code: 1001, reason: 'gateway went away' });
    expect(backendCloseFor(1015, 'tls')).toEqual({ code: 1001, reason: 'gateway went away' });
  });

  it('passes backend closes to the gateway, except the relayer codes 4000-4003', () => {
    expect(gatewayCloseForBackend(1000, 'done')).toEqual({ code: 1000, reason: 'done' });
    expect(gatewayCloseForBackend(1009, 'too big')).toEqual({ code: 1009, reason: 'too big' });
    expect(gatewayCloseForBackend(1011, 'crash')).toEqual({ code: 1011, reason: 'crash' });
    expect(gatewayCloseForBackend(4100, 'app')).toEqual({ code: 4100, reason: 'app' });
    expect(gatewayCloseForBackend(1005, '')).toEqual({ code: 1000, reason: '' });
    expect(gatewayCloseForBackend(1006, '')).toEqual({ code: 1001, reason: 'backend went away' });
    for (const code of [4000, 4001, 4002, 4003]) {
      expect(gatewayCloseForBackend(code, 'x')).toEqual({
        code: 1011,
        reason: `backend closed with ${code}`,
      });
    }
  });

  it('labels close codes with a bounded set of values', () => {
    expect([1000, 1006, 1015, 4000, 4003, 3001, 4100, 2000, 5000].map(closeCodeLabel)).toEqual([
      '1000',
      '1006',
      '1015',
      '4000',
      '4003',
      '3xxx',
      '4xxx',
      'invalid',
      'invalid',
    ]);
  });

  it('cuts close reasons to 123 bytes without splitting a character', () => {
    expect(truncateCloseReason('short')).toBe('short');
    expect(truncateCloseReason('a'.repeat(123))).toBe('a'.repeat(123));
    expect(truncateCloseReason('a'.repeat(200))).toBe('a'.repeat(123));
    // 61 two-byte characters = 122 bytes; the 62nd would make 124.
    expect(truncateCloseReason('é'.repeat(80))).toBe('é'.repeat(61));
    expect(truncateCloseReason('a' + '€'.repeat(50))).toBe('a' + '€'.repeat(40));
  });

  it('uses the spec values for its named codes and read limit', () => {
    expect(WS_CLOSE).toEqual({
      NORMAL: 1000,
      GOING_AWAY: 1001,
      POLICY_VIOLATION: 1008,
      TOO_BIG: 1009,
      INTERNAL_ERROR: 1011,
      TRY_AGAIN_LATER: 1013,
      SESSION_EXPIRED: 4000,
      VALIDATION_FAILED: 4001,
      STAKE_EXCEEDED: 4002,
      BACKEND_FAILED: 4003,
    });
    expect(WS_READ_LIMIT_BYTES).toBe(15_728_640);
  });
});

describe('session-end notice', () => {
  it('is POKTHTTPResponse{410, Content-Type: application/json, {"error":"session expired"}} in Go map order', () => {
    const header = Buffer.concat([
      Buffer.from([0x0a, 12]),
      Buffer.from('Content-Type'),
      Buffer.from([0x12, 16]),
      Buffer.from('application/json'),
    ]);
    const entry = Buffer.concat([
      Buffer.from([0x0a, 12]),
      Buffer.from('Content-Type'),
      Buffer.from([0x12, header.length]),
      header,
    ]);
    const body = Buffer.from('{"error":"session expired"}');
    const expected = Buffer.concat([
      Buffer.from([0x08, 0x9a, 0x03]),
      Buffer.from([0x12, entry.length]),
      entry,
      Buffer.from([0x1a, body.length]),
      body,
    ]);
    expect(Buffer.from(sessionExpiredPayload())).toEqual(expected);
    const decoded = decodePoktHttpResponse(sessionExpiredPayload());
    expect(decoded.ok).toBe(true);
    if (!decoded.ok) return;
    expect(decoded.value.statusCode).toBe(410);
    expect([...decoded.value.header.entries()]).toEqual([
      ['Content-Type', { key: 'Content-Type', values: ['application/json'] }],
    ]);
    expect(decoded.value.bodyBz.toString()).toBe('{"error":"session expired"}');
  });

  it('carries relay_miner_error{code 410, description "session expired"}', () => {
    expect(SESSION_EXPIRED_ERROR).toEqual({
      codespace: '',
      code: 410,
      description: 'session expired',
      message: '',
    });
  });
});

describe('backendFrameIsBinary', () => {
  const b = (s: string): Uint8Array => Buffer.from(s);

  it('keeps text frames text while the payload is UTF-8', () => {
    expect(backendFrameIsBinary(false, b('{"id":1}'))).toBe(false);
    expect(backendFrameIsBinary(false, b('hello é'))).toBe(false);
    expect(backendFrameIsBinary(false, new Uint8Array(0))).toBe(false);
  });

  it('writes a payload that is not UTF-8 as binary even when the gateway used text', () => {
    expect(backendFrameIsBinary(false, Buffer.from([0xff, 0x00]))).toBe(true);
    expect(backendFrameIsBinary(false, Buffer.from([0x7b, 0xc3]))).toBe(true);
  });

  it('writes JSON payloads of binary gateway frames as text', () => {
    expect(backendFrameIsBinary(true, b('{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"}'))).toBe(false);
    expect(backendFrameIsBinary(true, b('[{"id":1},{"id":2}]'))).toBe(false);
    expect(backendFrameIsBinary(true, b(' \r\n\t{"id":"é"}'))).toBe(false);
  });

  it('keeps everything else binary', () => {
    expect(backendFrameIsBinary(true, b('hello'))).toBe(true);
    expect(backendFrameIsBinary(true, new Uint8Array(0))).toBe(true);
    expect(backendFrameIsBinary(true, b('   '))).toBe(true);
    expect(backendFrameIsBinary(true, Buffer.from([0x7b, 0xff, 0xfe, 0x7d]))).toBe(true);
    expect(backendFrameIsBinary(true, Buffer.from([0x00, 0x7b]))).toBe(true);
  });
});

describe('classifyDialError', () => {
  const withCode = (message: string, code?: string): Error => Object.assign(new Error(message), { code });

  it('counts hard transport errors and 5xx answers against the breaker', () => {
    expect(classifyDialError(withCode('connect ECONNREFUSED 127.0.0.1:9', 'ECONNREFUSED'))).toBe(
      'breaker_failure',
    );
    expect(classifyDialError(withCode('getaddrinfo ENOTFOUND nowhere', 'ENOTFOUND'))).toBe('breaker_failure');
    expect(classifyDialError(withCode('read ECONNRESET', 'ECONNRESET'))).toBe('breaker_failure');
    expect(classifyDialError(new Error('Unexpected server response: 502'))).toBe('breaker_failure');
  });

  it('does not count timeouts or 1xx-4xx answers', () => {
    expect(classifyDialError(new Error('Opening handshake has timed out'))).toBe('timeout');
    expect(classifyDialError(withCode('connect ETIMEDOUT', 'ETIMEDOUT'))).toBe('timeout');
    expect(classifyDialError(new Error('Unexpected server response: 426'))).toBe('refused_by_backend');
    expect(classifyDialError(new Error('Unexpected server response: 404'))).toBe('refused_by_backend');
  });
});

describe('WebSocketBridgeMetrics', () => {
  it('registers its four series on the given registry', async () => {
    const registry = new Registry();
    const m = new WebSocketBridgeMetrics(registry);
    m.connections.inc({ service_id: 'anvil' });
    m.messages.inc({ service_id: 'anvil', direction: 'to_gateway' });
    m.closes.inc({ code: '4000', initiator: 'relayer' });
    m.upgrades.inc({ result: 'upgraded' });
    const json = await registry.getMetricsAsJSON();
    expect(json.map((s) => [s.name, s.type, s.values.map((v) => [v.labels, v.value])])).toEqual([
      ['ha_relayer_websocket_connections', 'gauge', [[{ service_id: 'anvil' }, 1]]],
      [
        'ha_relayer_websocket_messages_total',
        'counter',
        [[{ service_id: 'anvil', direction: 'to_gateway' }, 1]],
      ],
      ['ha_relayer_websocket_closes_total', 'counter', [[{ code: '4000', initiator: 'relayer' }, 1]]],
      ['ha_relayer_websocket_upgrades_total', 'counter', [[{ result: 'upgraded' }, 1]]],
    ]);
  });
});

describe('bridgeMetricsFor', () => {
  it('registers the series once per registry, however many listeners ask', () => {
    const registry = new Registry();
    const a = bridgeMetricsFor(registry);
    expect(bridgeMetricsFor(registry)).toBe(a);
    expect(bridgeMetricsFor(new Registry())).not.toBe(a);
    expect(registry.getMetricsAsArray().map((m) => m.name)).toEqual([
      'ha_relayer_websocket_connections',
      'ha_relayer_websocket_messages_total',
      'ha_relayer_websocket_closes_total',
      'ha_relayer_websocket_upgrades_total',
    ]);
  });
});

describe('resolveBridgeSettings', () => {
  it('applies the defaults and sizes the hard send limit from them', () => {
    expect(resolveBridgeSettings({ registry: new Registry() })).toEqual({
      readLimitBytes: 15_728_640,
      pingIntervalMs: 27_000,
      idleTimeoutSeconds: 32,
      highWaterBytes: 1_048_576,
      stallTimeoutMs: 10_000,
      maxPendingFrames: 100,
      drainTimeoutMs: 5_000,
      maxBufferedBytes: 1_048_576 + 2 * 15_728_640,
    });
  });

  it('keeps what the caller set', () => {
    expect(
      resolveBridgeSettings({
        registry: new Registry(),
        readLimitBytes: 1000,
        pingIntervalMs: 50,
        idleTimeoutSeconds: 8,
        highWaterBytes: 100,
        stallTimeoutMs: 20,
        maxPendingFrames: 3,
        drainTimeoutMs: 10,
      }),
    ).toEqual({
      readLimitBytes: 1000,
      pingIntervalMs: 50,
      idleTimeoutSeconds: 8,
      highWaterBytes: 100,
      stallTimeoutMs: 20,
      maxPendingFrames: 3,
      drainTimeoutMs: 10,
      maxBufferedBytes: 2100,
    });
  });
});

describe('handshakeStatusText', () => {
  it('names the statuses a handshake is refused with', () => {
    expect([400, 403, 404, 426, 503, 599].map(handshakeStatusText)).toEqual([
      '400 Bad Request',
      '403 Forbidden',
      '404 Not Found',
      '426 Upgrade Required',
      '503 Service Unavailable',
      '599',
    ]);
  });
});

describe('rawDataBytes', () => {
  it('returns the bytes of every shape ws delivers', () => {
    const buf = Buffer.from([1, 2, 3]);
    expect(rawDataBytes(buf)).toBe(buf);
    expect(rawDataBytes([Buffer.from([1]), Buffer.from([2, 3])])).toEqual(buf);
    expect(rawDataBytes(new Uint8Array([1, 2, 3]).buffer)).toEqual(buf);
  });
});
