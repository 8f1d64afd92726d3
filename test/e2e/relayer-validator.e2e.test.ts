/**
 * RelayValidator against real collaborators: ChainCaches over real Redis with the localnet chain
 * simulator as L3, a RingCache over the cache-backed ring source, a one-thread RingVerifyPool,
 * and requests ring-signed with the genesis keys. Covers the valid path (active and grace period)
 * and every rejection code, then feeds random and mutated bytes.
 */
import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChainCaches, createCacheMetrics } from '../../cache/index.js';
import type { ChainQueryClient } from '../../chain/index.js';
import {
  encodeRelayRequest,
  relayRequestSignableHash,
  type RelayRequest,
  type Session,
  type SessionHeader,
} from '../../protocol/index.js';
import {
  RelaySigner,
  RelayValidator,
  type ValidationCode,
  type ValidationResult,
} from '../../relayer/index.js';
import {
  DEFAULT_RING_VERIFY_POOL_CONFIG,
  RingCache,
  RingVerifyPool,
  expectedRingAddresses,
  selectBackend,
  signRingSignature,
} from '../../rings/index.js';
import { useRedis } from '../helpers/redis.js';
import {
  APP,
  GATEWAY,
  OWNER,
  SUPPLIER,
  testGenesis,
  testKey,
  type TestKey,
  startChainWithClient,
  type ChainWithClient,
} from './localnet-fixtures.js';

const log = pino({ level: 'silent' });
const backend = selectBackend('native');
const r = useRedis();
/** An application staked with no gateway and no public key on chain: its ring cannot resolve. */
const APP_NO_KEY = testKey('application-no-key');

let chain: ChainQueryClient;
let chainHandle: ChainWithClient;
let pool: RingVerifyPool;
let closedPool: RingVerifyPool;
let active: Session;
let previous: Session;
const height = { currentHeight: 5 };

beforeAll(async () => {
  const genesis = testGenesis();
  genesis.accounts.push({ address: APP_NO_KEY.address, balance_upokt: 1_000_000_000n });
  genesis.applications.push({
    address: APP_NO_KEY.address,
    stake_upokt: 100_000_000n,
    service_ids: ['anvil'],
    delegatee_gateway_addresses: [],
  });
  chainHandle = await startChainWithClient(genesis, 5);
  chain = chainHandle.query;
  pool = new RingVerifyPool({ ...DEFAULT_RING_VERIFY_POOL_CONFIG, threads: 1, backend: 'native' });
  closedPool = new RingVerifyPool({ ...DEFAULT_RING_VERIFY_POOL_CONFIG, threads: 1, backend: 'native' });
  await closedPool.close();
  active = await chain.getSession(APP.address, 'anvil', 5);
  previous = await chain.getSession(APP.address, 'anvil', 4);
});
afterAll(async () => {
  await pool.close();
  await chainHandle.stop();
});

function validator(opts: { verifier?: RingVerifyPool; services?: string[] } = {}): RelayValidator {
  const caches = new ChainCaches({
    redis: r.client,
    keys: r.keys(),
    log,
    metrics: createCacheMetrics(new Registry()),
    chain,
  });
  const signer = new RelaySigner({ backend, log }, [SUPPLIER.privateKey, OWNER.privateKey]);
  return new RelayValidator(
    {
      heights: height,
      sharedParamsAtHeight: caches.sharedParamsAtHeight,
      sessions: caches.sessions,
      rings: new RingCache({ source: caches.ringSource, backend }),
      verifier: opts.verifier ?? pool,
      suppliers: signer,
    },
    { services: opts.services ?? ['anvil'] },
  );
}

interface RequestOptions {
  supplier?: string;
  ringMember?: TestKey;
  /** Changes applied after signing (the signature no longer covers them). */
  afterSigning?: (req: RelayRequest) => RelayRequest;
  signature?: Uint8Array;
}

/** A RelayRequest ring-signed by the gateway over ring [app, gateway], as wire bytes. */
function request(header: SessionHeader, o: RequestOptions = {}): { req: RelayRequest; bytes: Uint8Array } {
  const ring = expectedRingAddresses(
    APP.address,
    { delegateeGatewayAddresses: [GATEWAY.address], pendingUndelegations: new Map() },
    header.sessionEndBlockHeight,
  );
  const member = o.ringMember ?? GATEWAY;
  const keys = ring.map((a) => (a === APP.address ? APP.publicKey : member.publicKey));
  const unsigned: RelayRequest = {
    meta: {
      sessionHeader: header,
      signature: Buffer.alloc(0),
      supplierOperatorAddress: o.supplier ?? SUPPLIER.address,
    },
    payload: Buffer.from('{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"}'),
  };
  const sig =
    o.signature ??
    signRingSignature(
      backend,
      keys,
      ring.indexOf(GATEWAY.address),
      member.privateKey,
      relayRequestSignableHash(unsigned),
    );
  let req: RelayRequest = { ...unsigned, meta: { ...unsigned.meta!, signature: Buffer.from(sig) } };
  if (o.afterSigning) req = o.afterSigning(req);
  return { req, bytes: encodeRelayRequest(req) };
}

function withHeader(h: Partial<SessionHeader>, o: RequestOptions = {}): Uint8Array {
  return request({ ...active.header!, ...h }, o).bytes;
}

async function rejection(
  v: RelayValidator,
  bytes: Uint8Array,
): Promise<{ code: string; httpStatus: number }> {
  const res = await v.validate(bytes);
  if (res.ok) return { code: 'OK', httpStatus: 200 };
  expect(res.reason.length).toBeGreaterThan(0);
  return { code: res.code, httpStatus: res.httpStatus };
}

describe('RelayValidator (localnet, Redis, ring verify pool)', () => {
  it('accepts a well-signed relay of the active session, looked up at the start height', async () => {
    height.currentHeight = 5;
    const { req, bytes } = request(active.header!);
    expect(await validator().validate(bytes)).toEqual({
      ok: true,
      request: req,
      session: active,
      supplierAddress: SUPPLIER.address,
      serviceId: 'anvil',
      height: 5,
      arrivalHeight: 5,
      lookupHeight: 5,
      inGracePeriod: false,
    });
  });

  it('accepts the previous session inside the grace period, looked up at its end height', async () => {
    height.currentHeight = 5;
    const { req, bytes } = request(previous.header!);
    expect(await validator().validate(bytes)).toEqual({
      ok: true,
      request: req,
      session: previous,
      supplierAddress: SUPPLIER.address,
      serviceId: 'anvil',
      height: 5,
      arrivalHeight: 5,
      lookupHeight: 4,
      inGracePeriod: true,
    });
  });

  it('checks against the provider height and only echoes the pinned arrival height', async () => {
    height.currentHeight = 5;
    const { req, bytes } = request(active.header!);
    // An arrival height far past the session would expire it if it were used for the checks.
    expect(await validator().validate(bytes, { arrivalHeight: 50 })).toEqual({
      ok: true,
      request: req,
      session: active,
      supplierAddress: SUPPLIER.address,
      serviceId: 'anvil',
      height: 5,
      arrivalHeight: 50,
      lookupHeight: 5,
      inGracePeriod: false,
    });
  });

  it('rejects each malformed or unauthorised request with its stable code', async () => {
    height.currentHeight = 5;
    const v = validator();
    const noMeta = encodeRelayRequest({ meta: undefined, payload: Buffer.from('x') });
    const noHeader = encodeRelayRequest({
      meta: {
        sessionHeader: undefined,
        signature: Buffer.from([1]),
        supplierOperatorAddress: SUPPLIER.address,
      },
      payload: Buffer.from('x'),
    });
    const cases: [string, Uint8Array, { code: ValidationCode; httpStatus: number }][] = [
      ['garbage', Uint8Array.from([0xff, 0xff, 0xff]), { code: 'RELAY_MALFORMED', httpStatus: 400 }],
      ['no meta', noMeta, { code: 'RELAY_MISSING_SESSION_HEADER', httpStatus: 400 }],
      ['no header', noHeader, { code: 'RELAY_MISSING_SESSION_HEADER', httpStatus: 400 }],
      [
        'bad app address',
        withHeader({ applicationAddress: 'not-an-address' }),
        { code: 'RELAY_INVALID_SESSION_HEADER', httpStatus: 400 },
      ],
      [
        'empty session id',
        withHeader({ sessionId: '' }),
        { code: 'RELAY_INVALID_SESSION_HEADER', httpStatus: 400 },
      ],
      [
        'no signature',
        request(active.header!, { signature: new Uint8Array(0) }).bytes,
        { code: 'RELAY_MISSING_SIGNATURE', httpStatus: 400 },
      ],
      [
        'no supplier',
        request(active.header!, { supplier: '' }).bytes,
        { code: 'RELAY_MISSING_SUPPLIER_ADDRESS', httpStatus: 400 },
      ],
      [
        'supplier not held',
        request(active.header!, { supplier: GATEWAY.address }).bytes,
        { code: 'SUPPLIER_NOT_OWNED', httpStatus: 403 },
      ],
      ['unknown service', withHeader({ serviceId: 'eth' }), { code: 'SERVICE_UNKNOWN', httpStatus: 404 }],
      [
        'start 0 (ValidateBasic)',
        withHeader({ sessionStartBlockHeight: 0n }),
        { code: 'RELAY_INVALID_SESSION_HEADER', httpStatus: 400 },
      ],
      [
        'far future',
        withHeader({ sessionStartBlockHeight: 20_001n, sessionEndBlockHeight: 20_004n }),
        { code: 'HEIGHT_IMPLAUSIBLE', httpStatus: 400 },
      ],
      [
        'app with no application',
        withHeader({ applicationAddress: OWNER.address }),
        { code: 'RING_APP_NOT_FOUND', httpStatus: 403 },
      ],
      [
        'ring member without a public key',
        withHeader({ applicationAddress: APP_NO_KEY.address }),
        { code: 'RING_UNRESOLVABLE', httpStatus: 403 },
      ],
      [
        'signature bytes not a ring signature',
        request(active.header!, { signature: Uint8Array.from([1, 2, 3]) }).bytes,
        { code: 'RING_SIG_MALFORMED', httpStatus: 403 },
      ],
      [
        'signer outside the ring',
        request(active.header!, { ringMember: SUPPLIER }).bytes,
        { code: 'RING_SIG_NOT_MEMBER', httpStatus: 403 },
      ],
      [
        'payload changed after signing',
        request(active.header!, { afterSigning: (q) => ({ ...q, payload: Buffer.from('tampered') }) }).bytes,
        { code: 'RING_SIG_INVALID', httpStatus: 403 },
      ],
      [
        'supplier held but not in the session',
        request(active.header!, { supplier: OWNER.address }).bytes,
        { code: 'SUPPLIER_NOT_IN_SESSION', httpStatus: 403 },
      ],
    ];
    const got: Record<string, unknown> = {};
    const want: Record<string, unknown> = {};
    for (const [name, bytes, expected] of cases) {
      got[name] = await rejection(v, bytes);
      want[name] = expected;
    }
    expect(got).toEqual(want);
  });

  it('compares the header with the on-chain session field by field', async () => {
    height.currentHeight = 5;
    const v = validator();
    const mismatch = (field: string) => ({
      ok: false,
      code: 'SESSION_MISMATCH',
      reason: `session header ${field} differs from the on-chain session`,
      httpStatus: 403,
    });
    // Active at 5 with start 4: looked up at 4, where the chain's session is [1, 4].
    expect(await v.validate(withHeader({ sessionStartBlockHeight: 4n }))).toEqual(
      mismatch('session start height'),
    );
    expect(await v.validate(withHeader({ sessionEndBlockHeight: 9n }))).toEqual(
      mismatch('session end height'),
    );
    expect(await v.validate(withHeader({ sessionId: 'forged' }))).toEqual(mismatch('session id'));
  });

  it('rejects a session whose grace period has elapsed before any lookup of the session', async () => {
    height.currentHeight = 10; // session [5, 8], grace 1 → last accepted height 9
    expect(await rejection(validator(), request(active.header!).bytes)).toEqual({
      code: 'SESSION_EXPIRED',
      httpStatus: 403,
    });
    height.currentHeight = 5;
  });

  it('rejects a configured service the application has no session for', async () => {
    height.currentHeight = 5;
    expect(
      await rejection(validator({ services: ['anvil', 'eth'] }), withHeader({ serviceId: 'eth' })),
    ).toEqual({
      code: 'SESSION_NOT_FOUND',
      httpStatus: 403,
    });
  });

  it('answers a server-error code when the verify pool cannot judge the signature', async () => {
    height.currentHeight = 5;
    const res: ValidationResult = await validator({ verifier: closedPool }).validate(
      request(active.header!).bytes,
    );
    expect(res).toEqual({
      ok: false,
      code: 'RING_VERIFY_UNAVAILABLE',
      reason: 'ring verify pool is closed',
      httpStatus: 503,
    });
  });

  it('never throws on random or mutated bytes', async () => {
    height.currentHeight = 5;
    const v = validator();
    const valid = request(active.header!).bytes;
    const codes = new Set<string>();
    for (let i = 0; i < 200; i++) {
      let bytes: Uint8Array;
      if (i % 2 === 0) {
        bytes = randomBytes(1 + (i % 97));
      } else {
        bytes = Uint8Array.from(valid);
        const flips = 1 + (i % 4);
        for (let f = 0; f < flips; f++) {
          const at = (i * 7919 + f * 104_729) % bytes.length;
          bytes[at] = (bytes[at] ?? 0) ^ (1 << (i % 8));
        }
        if (i % 5 === 0) bytes = bytes.subarray(0, (i * 31) % bytes.length);
      }
      const res = await v.validate(bytes);
      codes.add(res.ok ? 'OK' : res.code);
    }
    const known = new Set<string>([
      'OK',
      'RELAY_MALFORMED',
      'RELAY_MISSING_SESSION_HEADER',
      'RELAY_INVALID_SESSION_HEADER',
      'RELAY_MISSING_SIGNATURE',
      'RELAY_MISSING_SUPPLIER_ADDRESS',
      'SUPPLIER_NOT_OWNED',
      'SERVICE_UNKNOWN',
      'HEIGHT_IMPLAUSIBLE',
      'SESSION_EXPIRED',
      'RING_APP_NOT_FOUND',
      'RING_UNRESOLVABLE',
      'RING_SIG_MALFORMED',
      'RING_SIG_NOT_MEMBER',
      'RING_SIG_INVALID',
      'SESSION_NOT_FOUND',
      'SESSION_MISMATCH',
      'SUPPLIER_NOT_IN_SESSION',
    ] satisfies (ValidationCode | 'OK')[]);
    expect([...codes].filter((c) => !known.has(c))).toEqual([]);
    expect(codes.has('RELAY_MALFORMED')).toBe(true);
  });
});
