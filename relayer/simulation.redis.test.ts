import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { beforeEach, describe, expect, it } from 'vitest';
import { bytesToHex } from '../core/index.js';
import {
  addressFromPublicKey,
  privateKeyFromSecret,
  publicKeyFromPrivate,
  relayRequestSignableHash,
  type RelayRequest,
  type SessionHeader,
} from '../protocol/index.js';
import { nobleBackend, signRingSignature, verifyRingSignature } from '../rings/index.js';
import { useRedis } from '../test/helpers/redis.js';
import {
  SimulationAdmission,
  formatSimSessionId,
  type SimRefusal,
  type SimRejectCode,
  type SimulationConfig,
  type SimulationIdentityConfig,
} from './simulation.js';
import type { RingVerifier } from './validator.js';

const r = useRedis();
const log = pino({ level: 'silent' });
const enc = new TextEncoder();

interface TestKey {
  priv: Uint8Array;
  pub: Uint8Array;
  hex: string;
  address: string;
}
function testKey(secret: string): TestKey {
  const priv = privateKeyFromSecret(enc.encode(secret));
  const pub = publicKeyFromPrivate(priv);
  return { priv, pub, hex: bytesToHex(pub), address: addressFromPublicKey(pub) };
}

const APP = testKey('sim-app');
const GW = testKey('sim-gateway');
const GW2 = testKey('sim-gateway-2');
const OTHER_APP = testKey('sim-other-app');
const STRANGER = testKey('sim-stranger');
const SUPPLIER = testKey('sim-supplier').address;
const FOREIGN_SUPPLIER = testKey('sim-foreign-supplier').address;

const T0_MS = 1_800_000_000_000;
const WINDOW = 30;

const IDENTITY: SimulationIdentityConfig = {
  key_id: 'probe',
  enabled: true,
  max_rps: 100,
  app_pubkey_hex: APP.hex,
  gateway_pubkeys_hex: [GW.hex, GW2.hex],
  allowed_services: [],
};

const IDENTITIES: SimulationIdentityConfig[] = [
  IDENTITY,
  { ...IDENTITY, key_id: 'off', enabled: false },
  { ...IDENTITY, key_id: 'dated', not_after: new Date(T0_MS + 60_000).toISOString() },
  { ...IDENTITY, key_id: 'eth-only', allowed_services: ['eth'] },
  { ...IDENTITY, key_id: 'slow', max_rps: 2 },
];

const realVerifier: RingVerifier = {
  verify: (signature, message32, ring) =>
    Promise.resolve(verifyRingSignature(nobleBackend, signature, message32, ring)),
};

let clockMs = T0_MS;

function build(
  opts: {
    config?: Partial<SimulationConfig>;
    redis?: Redis;
    verifier?: RingVerifier;
    registry?: Registry;
  } = {},
): SimulationAdmission {
  return new SimulationAdmission({
    config: {
      enabled: true,
      max_concurrent: 8,
      freshness_window_seconds: WINDOW,
      identities: IDENTITIES,
      ...opts.config,
    },
    services: ['eth', 'solana'],
    suppliers: { owns: (a) => a === SUPPLIER, addresses: [SUPPLIER] },
    redis: opts.redis ?? r.client,
    keys: r.keys(),
    verifier: opts.verifier ?? realVerifier,
    registry: opts.registry ?? new Registry(),
    log,
    nowMs: () => clockMs,
  });
}

interface RequestOpts {
  signer?: TestKey;
  ring?: TestKey[];
  header?: Partial<SessionHeader>;
  supplier?: string;
  payload?: string;
  signature?: Uint8Array;
}

function nowSessionId(offsetSeconds = 0): string {
  return formatSimSessionId(Math.floor(clockMs / 1000) + offsetSeconds, randomBytes(8).toString('hex'));
}

/** A relay request signed with a real bLSAG ring signature. */
function request(opts: RequestOpts = {}): RelayRequest {
  const signer = opts.signer ?? APP;
  const ring = opts.ring ?? [APP, GW, GW2];
  const unsigned: RelayRequest = {
    meta: {
      sessionHeader: {
        applicationAddress: APP.address,
        serviceId: 'eth',
        sessionId: nowSessionId(),
        sessionStartBlockHeight: 1n,
        sessionEndBlockHeight: 2n,
        ...opts.header,
      },
      signature: Buffer.alloc(0),
      supplierOperatorAddress: opts.supplier ?? SUPPLIER,
    },
    payload: Buffer.from(opts.payload ?? '{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"}'),
  };
  const signature =
    opts.signature ??
    signRingSignature(
      nobleBackend,
      ring.map((k) => k.pub),
      ring.indexOf(signer),
      signer.priv,
      relayRequestSignableHash(unsigned),
    );
  return { ...unsigned, meta: { ...unsigned.meta!, signature: Buffer.from(signature) } };
}

/** `ha:sim:replay:{hex sha256(signature)}` under this test's prefix. */
function replayKey(req: RelayRequest): string {
  return `${r.prefix}ha:sim:replay:${createHash('sha256').update(req.meta!.signature).digest('hex')}`;
}

const FORBIDDEN = { httpStatus: 403, grpcCode: 7, wsCloseCode: 4001 } as const;

function refusal(
  code: SimRejectCode,
  reason: string,
  shape: Pick<SimRefusal, 'httpStatus' | 'grpcCode' | 'wsCloseCode' | 'result'>,
): SimRefusal {
  return { ok: false, code, reason, message: `simulation rejected: ${reason}`, ...shape };
}

beforeEach(() => {
  clockMs = T0_MS;
});

describe('SimulationAdmission (relayer.md §9, real Redis)', () => {
  it('admits a relay signed by the pinned application and records its replay guard', async () => {
    const adm = build();
    const req = request();
    const res = await adm.admit('probe', req, 'http');
    expect(res).toEqual({
      ok: true,
      identity: 'probe',
      serviceId: 'eth',
      supplierAddress: SUPPLIER,
      release: expect.any(Function),
    });
    expect(adm.inFlight).toBe(1);
    const key = replayKey(req);
    expect(await r.client.get(key)).toBe('1');
    expect(await r.client.ttl(key)).toBe(2 * WINDOW);
    if (res.ok) {
      res.release();
      res.release();
    }
    expect(adm.inFlight).toBe(0);
  });

  it('admits a relay signed by a gateway, whatever the order of the ring in the signature', async () => {
    const adm = build();
    for (const [signer, ring] of [
      [GW, [APP, GW, GW2]],
      [GW2, [GW2, GW, APP]],
      [APP, [GW, APP]],
    ] as const) {
      const res = await adm.admit('probe', request({ signer, ring: [...ring] }), 'websocket');
      expect(res.ok).toBe(true);
      if (res.ok) res.release();
    }
    expect(adm.inFlight).toBe(0);
  });

  it('verifies against the pinned ring ordered by address like an on-chain ring, without duplicates', async () => {
    const rings: string[][] = [];
    const adm = new SimulationAdmission({
      config: {
        enabled: true,
        max_concurrent: 8,
        freshness_window_seconds: WINDOW,
        identities: [{ ...IDENTITY, gateway_pubkeys_hex: [GW2.hex, GW.hex, GW2.hex.toUpperCase()] }],
      },
      services: ['eth'],
      suppliers: { owns: (a) => a === SUPPLIER, addresses: [SUPPLIER] },
      redis: r.client,
      keys: r.keys(),
      verifier: {
        verify: (signature, message32, ring) => {
          rings.push(ring.map((k) => bytesToHex(k)));
          return realVerifier.verify(signature, message32, ring);
        },
      },
      registry: new Registry(),
      log,
      nowMs: () => clockMs,
    });
    expect((await adm.admit('probe', request(), 'http')).ok).toBe(true);
    const sorted = [APP, GW, GW2].sort((a, b) => (a.address < b.address ? -1 : 1)).map((k) => k.hex);
    expect(rings).toEqual([sorted]);
  });

  describe('refusals, in admission order', () => {
    it('concurrency slots full → 429 / ResourceExhausted / 1013, until one is released', async () => {
      const adm = build({ config: { max_concurrent: 2 } });
      const a = await adm.admit('probe', request(), 'http');
      const b = await adm.admit('probe', request(), 'grpc');
      expect([a.ok, b.ok]).toEqual([true, true]);
      const req = request();
      expect(await adm.admit('probe', req, 'grpc')).toEqual(
        refusal('SIM_CONCURRENCY_LIMIT', 'concurrency limit reached', {
          result: 'rate_limited',
          httpStatus: 429,
          grpcCode: 8,
          wsCloseCode: 1013,
        }),
      );
      // Refused before anything else: the replay guard was not touched.
      expect(await r.client.exists(replayKey(req))).toBe(0);
      if (a.ok) a.release();
      if (a.ok) a.release(); // idempotent: frees one slot, not two
      expect(adm.inFlight).toBe(1);
      const c = await adm.admit('probe', req, 'grpc');
      expect(c.ok).toBe(true);
      expect(adm.inFlight).toBe(2);
      expect((await adm.admit('probe', request(), 'grpc')).ok).toBe(false);
    });

    it('unknown key id → 403', async () => {
      const adm = build();
      expect(await adm.admit('nobody', request(), 'http')).toEqual(
        refusal('SIM_UNKNOWN_KEY_ID', 'unknown key id', { ...FORBIDDEN, result: 'verify_failed' }),
      );
      expect(await adm.admit('', request(), 'http')).toEqual(
        refusal('SIM_UNKNOWN_KEY_ID', 'unknown key id', { ...FORBIDDEN, result: 'verify_failed' }),
      );
      expect(await adm.admit('__proto__', request(), 'http')).toEqual(
        refusal('SIM_UNKNOWN_KEY_ID', 'unknown key id', { ...FORBIDDEN, result: 'verify_failed' }),
      );
      expect(adm.inFlight).toBe(0);
    });

    it('disabled identity → 403', async () => {
      const adm = build();
      expect(await adm.admit('off', request(), 'http')).toEqual(
        refusal('SIM_IDENTITY_DISABLED', 'identity is disabled', { ...FORBIDDEN, result: 'verify_failed' }),
      );
    });

    it('identity past not_after → 403 (admitted up to and at not_after)', async () => {
      const adm = build();
      clockMs = T0_MS + 60_000;
      const atLimit = await adm.admit('dated', request(), 'http');
      expect(atLimit.ok).toBe(true);
      clockMs = T0_MS + 60_001;
      expect(await adm.admit('dated', request(), 'http')).toEqual(
        refusal('SIM_IDENTITY_EXPIRED', 'identity has expired (not_after)', {
          ...FORBIDDEN,
          result: 'verify_failed',
        }),
      );
    });

    it('no supplier operator address → 400 / InvalidArgument', async () => {
      const adm = build();
      expect(await adm.admit('probe', request({ supplier: '' }), 'grpc')).toEqual(
        refusal('SIM_SUPPLIER_MISSING', 'no supplier operator address', {
          result: 'supplier_not_loaded',
          httpStatus: 400,
          grpcCode: 3,
          wsCloseCode: 4001,
        }),
      );
      const noMeta = { ...request(), meta: undefined };
      expect(await adm.admit('probe', noMeta, 'grpc')).toEqual(
        refusal('SIM_SUPPLIER_MISSING', 'no supplier operator address', {
          result: 'supplier_not_loaded',
          httpStatus: 400,
          grpcCode: 3,
          wsCloseCode: 4001,
        }),
      );
    });

    it('supplier whose key this relayer does not hold → 403', async () => {
      const adm = build();
      expect(await adm.admit('probe', request({ supplier: FOREIGN_SUPPLIER }), 'http')).toEqual(
        refusal('SIM_SUPPLIER_NOT_LOADED', 'supplier key is not loaded on this relayer', {
          ...FORBIDDEN,
          result: 'supplier_not_loaded',
        }),
      );
    });

    it('ValidateBasic failures → 403 with the basic check reason', async () => {
      const adm = build();
      const base = request();
      const cases: [RelayRequest, string][] = [
        [
          { ...base, meta: { ...base.meta!, sessionHeader: undefined } },
          'relay request meta has no session header',
        ],
        [
          request({ header: { applicationAddress: 'cosmos1notpokt' } }),
          'invalid session header: application address "cosmos1notpokt" is not a pokt bech32 address',
        ],
        [request({ header: { sessionId: '' } }), 'invalid session header: session id is empty'],
        [
          request({ header: { serviceId: 'bad service' } }),
          'invalid session header: service id "bad service" is not a valid service id',
        ],
        [
          request({ header: { sessionStartBlockHeight: 0n } }),
          'invalid session header: sessions can only start at height 1 or greater',
        ],
        [
          request({ header: { sessionEndBlockHeight: 1n } }),
          'invalid session header: session end height is not after its start',
        ],
        [request({ signature: new Uint8Array(0) }), 'relay request has no ring signature'],
      ];
      for (const [req, why] of cases) {
        expect(await adm.admit('probe', req, 'http')).toEqual(
          refusal('SIM_INVALID_REQUEST', `invalid relay request: ${why}`, {
            ...FORBIDDEN,
            result: 'verify_failed',
          }),
        );
      }
    });

    it('application address not the pinned one → 403', async () => {
      const adm = build();
      // Validly signed by another application over its own ring.
      const req = request({
        signer: OTHER_APP,
        ring: [OTHER_APP, GW],
        header: { applicationAddress: OTHER_APP.address },
      });
      expect(await adm.admit('probe', req, 'http')).toEqual(
        refusal('SIM_IDENTITY_MISMATCH', 'application address does not match the pinned identity', {
          ...FORBIDDEN,
          result: 'identity_mismatch',
        }),
      );
    });

    it('service not configured → 404 / NotFound', async () => {
      const adm = build();
      expect(await adm.admit('probe', request({ header: { serviceId: 'btc' } }), 'grpc_web')).toEqual(
        refusal('SIM_SERVICE_UNKNOWN', 'service is not configured on this relayer', {
          result: 'service_unknown',
          httpStatus: 404,
          grpcCode: 5,
          wsCloseCode: 4001,
        }),
      );
    });

    it('service outside allowed_services → 403; inside or unrestricted → admitted', async () => {
      const adm = build();
      expect(await adm.admit('eth-only', request({ header: { serviceId: 'solana' } }), 'http')).toEqual(
        refusal('SIM_SERVICE_NOT_ALLOWED', 'service is not allowed for this identity', {
          ...FORBIDDEN,
          result: 'service_not_allowed',
        }),
      );
      expect((await adm.admit('eth-only', request({ header: { serviceId: 'eth' } }), 'http')).ok).toBe(true);
      expect((await adm.admit('probe', request({ header: { serviceId: 'solana' } }), 'http')).ok).toBe(true);
    });

    it('malformed synthetic session id → 400 / InvalidArgument', async () => {
      const adm = build();
      const ts = Math.floor(T0_MS / 1000);
      for (const sessionId of [
        'a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90',
        `simv1:${ts}:`,
        `simv1:${ts}:nothex`,
        `simv2:${ts}:00ff`,
        `simv1:-${ts}:00ff`,
        `simv1:${ts}:00ff:00`,
      ]) {
        expect(await adm.admit('probe', request({ header: { sessionId } }), 'http')).toEqual(
          refusal('SIM_BAD_SESSION_ID', 'session id is not simv1:<unix seconds>:<nonce hex>', {
            result: 'verify_failed',
            httpStatus: 400,
            grpcCode: 3,
            wsCloseCode: 4001,
          }),
        );
      }
    });

    it('session timestamp outside the freshness window (|now − ts| ≥ window) → 403', async () => {
      const adm = build();
      const stale = refusal('SIM_STALE', 'session timestamp is not within 30s of the relayer clock', {
        ...FORBIDDEN,
        result: 'verify_failed',
      });
      const outcome = async (offset: number): Promise<boolean | SimRefusal> => {
        const res = await adm.admit(
          'probe',
          request({ header: { sessionId: nowSessionId(offset) } }),
          'http',
        );
        return res.ok ? true : res;
      };
      expect(await outcome(-WINDOW)).toEqual(stale);
      expect(await outcome(WINDOW)).toEqual(stale);
      expect(await outcome(-WINDOW + 1)).toBe(true);
      expect(await outcome(WINDOW - 1)).toBe(true);
    });

    it('a signature seen before → 409 / AlreadyExists, from any relayer sharing the Redis', async () => {
      const first = build();
      const second = build();
      const req = request();
      const a = await first.admit('probe', req, 'http');
      expect(a.ok).toBe(true);
      const replayed = refusal('SIM_REPLAY', 'signature already seen (replay)', {
        result: 'replay_rejected',
        httpStatus: 409,
        grpcCode: 6,
        wsCloseCode: 4001,
      });
      expect(await first.admit('probe', req, 'http')).toEqual(replayed);
      expect(await second.admit('probe', req, 'websocket')).toEqual(replayed);
    });

    it('replay guard store unreachable → 503 / Unavailable', async () => {
      const port = await closedPort();
      const down = new Redis({
        port,
        host: '127.0.0.1',
        lazyConnect: true,
        enableOfflineQueue: false,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
      });
      try {
        const adm = build({ redis: down });
        expect(await adm.admit('probe', request(), 'http')).toEqual(
          refusal('SIM_DEDUP_UNAVAILABLE', 'replay guard store unavailable', {
            result: 'dedup_unavailable',
            httpStatus: 503,
            grpcCode: 14,
            wsCloseCode: 4001,
          }),
        );
        expect(adm.inFlight).toBe(0);
        expect(await adm.probeMeter()).toBe(false);
      } finally {
        down.disconnect();
      }
    });

    it('signature by a key outside the pinned ring → 403', async () => {
      const adm = build();
      const req = request({ signer: STRANGER, ring: [APP, STRANGER] });
      expect(await adm.admit('probe', req, 'http')).toEqual(
        refusal(
          'SIM_BAD_SIGNATURE',
          'ring signature does not verify against the pinned ring: ring member 1 is not in the expected ring',
          { ...FORBIDDEN, result: 'verify_failed' },
        ),
      );
    });

    it('signature over other bytes → 403', async () => {
      const adm = build();
      const signed = request();
      const tampered: RelayRequest = { ...signed, payload: Buffer.from('{"tampered":true}') };
      expect(await adm.admit('probe', tampered, 'http')).toEqual(
        refusal(
          'SIM_BAD_SIGNATURE',
          'ring signature does not verify against the pinned ring: challenge chain does not close',
          { ...FORBIDDEN, result: 'verify_failed' },
        ),
      );
    });

    it('ring verifier unavailable → 503, the signature not judged', async () => {
      const adm = build({
        verifier: {
          verify: () =>
            Promise.resolve({ ok: false, code: 'RING_VERIFY_UNAVAILABLE', reason: 'verify queue is full' }),
        },
      });
      expect(await adm.admit('probe', request(), 'http')).toEqual(
        refusal('SIM_VERIFY_UNAVAILABLE', 'ring signature not checked: verify queue is full', {
          result: 'verify_failed',
          httpStatus: 503,
          grpcCode: 14,
          wsCloseCode: 4001,
        }),
      );
    });

    it('a throwing verifier propagates and frees the slot', async () => {
      const adm = build({ verifier: { verify: () => Promise.reject(new Error('worker crashed')) } });
      await expect(adm.admit('probe', request(), 'http')).rejects.toThrow('worker crashed');
      expect(adm.inFlight).toBe(0);
    });

    it('token bucket: max_rps relays, then 429 until the bucket refills', async () => {
      const adm = build();
      const limited = refusal('SIM_RATE_LIMITED', 'rate limit reached', {
        result: 'rate_limited',
        httpStatus: 429,
        grpcCode: 8,
        wsCloseCode: 1013,
      });
      const admit = async (): Promise<boolean | SimRefusal> => {
        const res = await adm.admit('slow', request(), 'websocket');
        if (!res.ok) return res;
        res.release();
        return true;
      };
      // A bad signature is refused before the bucket: it costs no token.
      expect((await adm.admit('slow', request({ signer: STRANGER, ring: [APP, STRANGER] }), 'http')).ok).toBe(
        false,
      );
      expect(await admit()).toBe(true);
      expect(await admit()).toBe(true);
      expect(await admit()).toEqual(limited);
      clockMs += 250; // half a token
      expect(await admit()).toEqual(limited);
      clockMs += 250; // one token
      expect(await admit()).toBe(true);
      expect(await admit()).toEqual(limited);
      clockMs += 10_000; // capacity is max_rps, not more
      expect(await admit()).toBe(true);
      expect(await admit()).toBe(true);
      expect(await admit()).toEqual(limited);
      // Buckets are per identity.
      expect((await adm.admit('probe', request(), 'http')).ok).toBe(true);
      expect(adm.inFlight).toBe(1);
    });
  });

  it('simulation disabled: reports it and refuses every key id', async () => {
    const adm = build({ config: { enabled: false } });
    expect(adm.enabled).toBe(false);
    expect(await adm.admit('probe', request(), 'http')).toEqual(
      refusal('SIM_UNKNOWN_KEY_ID', 'unknown key id', { ...FORBIDDEN, result: 'verify_failed' }),
    );
  });

  it('probeMeter answers true while Redis answers PING', async () => {
    expect(await build().probeMeter()).toBe(true);
  });

  it('counts refusals itself and admitted relays through record()', async () => {
    const registry = new Registry();
    const adm = build({ registry });
    const ok = await adm.admit('probe', request(), 'http');
    expect(ok.ok).toBe(true);
    await adm.admit('nobody', request(), 'http');
    await adm.admit('probe', request({ header: { serviceId: 'btc' } }), 'grpc');
    await adm.admit('probe', request({ supplier: FOREIGN_SUPPLIER }), 'websocket');
    adm.record('http', 'eth', SUPPLIER, 'success', 0.02);
    adm.record('http', 'eth', SUPPLIER, 'meter_degraded', 0.2);

    const json = await registry.getMetricsAsJSON();
    const counter = json.find((m) => m.name === 'ha_relayer_simulated_relays_total')!;
    expect(counter.values.map((v) => ({ labels: v.labels, value: v.value }))).toEqual([
      {
        labels: { transport: 'http', service: 'eth', supplier: SUPPLIER, result: 'verify_failed' },
        value: 1,
      },
      {
        labels: { transport: 'grpc', service: 'unknown', supplier: SUPPLIER, result: 'service_unknown' },
        value: 1,
      },
      {
        labels: {
          transport: 'websocket',
          service: 'eth',
          supplier: 'unknown',
          result: 'supplier_not_loaded',
        },
        value: 1,
      },
      { labels: { transport: 'http', service: 'eth', supplier: SUPPLIER, result: 'success' }, value: 1 },
      {
        labels: { transport: 'http', service: 'eth', supplier: SUPPLIER, result: 'meter_degraded' },
        value: 1,
      },
    ]);
    const hist = json.find((m) => m.name === 'ha_relayer_simulated_relay_duration_seconds')!;
    const values = hist.values as { metricName?: string; labels: Record<string, unknown>; value: number }[];
    expect(values.filter((v) => v.metricName?.endsWith('_count'))).toEqual([
      {
        metricName: 'ha_relayer_simulated_relay_duration_seconds_count',
        labels: { transport: 'http', service: 'eth' },
        value: 2,
      },
    ]);
    expect(values.find((v) => v.metricName?.endsWith('_sum'))!.value).toBeCloseTo(0.22, 10);
  });
});

/** A TCP port nothing listens on (bound, then closed). */
function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}
