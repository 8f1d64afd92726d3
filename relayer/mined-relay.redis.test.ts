import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';
import pino from 'pino';
import { Counter, Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { hexToBytes } from '../core/index.js';
import { ChainCaches, createCacheMetrics, type ChainCachesClient } from '../cache/index.js';
import { ChainNotFoundError, ChainUnavailableError } from '../chain/index.js';
import {
  BASE_RELAY_DIFFICULTY_TARGET,
  addressFromPrivateKey,
  decodeRelay,
  encodeRelayRequest,
  mineRelay,
  pb,
  publicKeyFromPrivate,
  relayResponseSignableHash,
  supplierSignatureDigest,
  type RelayRequest,
  type SessionHeader,
} from '../protocol/index.js';
import { selectBackend } from '../rings/index.js';
import {
  StreamPublisher,
  StreamPublisherMetrics,
  decodeMinedRelayMessage,
  type MinedRelayMessage,
  type StreamPublisherConfig,
} from '../transport/streams/index.js';
import { useRedis } from '../test/helpers/redis.js';
import {
  MinedRelayPublisher,
  type MinedPublishResult,
  type MinedRelayPublisherConfig,
} from './mined-relay.js';
import { RelayPipelineMetrics } from './pipeline-metrics.js';
import { RelaySigner } from './signer.js';

const r = useRedis();
const silent = pino({ level: 'silent' });
const backend = selectBackend('native');
const SUPPLIER_KEY = hexToBytes('41'.repeat(32));
const SUPPLIER = addressFromPrivateKey(SUPPLIER_KEY);
const STRANGER = addressFromPrivateKey(hexToBytes('42'.repeat(32)));
const signer = new RelaySigner({ backend, log: silent }, [SUPPLIER_KEY]);
const NOW_NS = 1_763_900_000_123_456_789n;

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

const HEADER: SessionHeader = {
  applicationAddress: 'pokt1app',
  serviceId: 'anvil',
  sessionId: 'sess1',
  sessionStartBlockHeight: 21n,
  sessionEndBlockHeight: 30n,
};

function request(header: Partial<SessionHeader> | null = {}, supplier = SUPPLIER): RelayRequest {
  return {
    meta: {
      sessionHeader: header === null ? undefined : { ...HEADER, ...header },
      signature: Buffer.from('ring-signature-bytes-as-received'),
      supplierOperatorAddress: supplier,
    },
    payload: Buffer.from('{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"}'),
  };
}

const BODY = new TextEncoder().encode('{"jsonrpc":"2.0","id":1,"result":"0x10"}');

/** Answers difficulty and CUPR from tables; `fails` makes the next N calls of a kind fail. */
class MiningChain implements ChainCachesClient {
  difficulty = new Map<string, Uint8Array>();
  cupr = new Map<string, bigint>([['anvil@21', 5n]]);
  fails = { difficulty: 0, cupr: 0 };
  calls = { difficulty: 0, cupr: 0 };

  getRelayMiningDifficultyAtHeight(
    serviceId: string,
    height: number,
  ): Promise<pb.serviceDifficulty.RelayMiningDifficulty> {
    this.calls.difficulty++;
    if (this.fails.difficulty > 0) {
      this.fails.difficulty--;
      return Promise.reject(new ChainUnavailableError('difficulty'));
    }
    const target = this.difficulty.get(`${serviceId}@${height}`);
    if (target === undefined) return Promise.reject(new ChainNotFoundError('difficulty', 'none'));
    return Promise.resolve(
      pb.serviceDifficulty.RelayMiningDifficulty.fromPartial({
        serviceId,
        blockHeight: BigInt(height),
        numRelaysEma: 10n,
        targetHash: Buffer.from(target),
      }),
    );
  }
  getComputeUnitsPerRelayAtHeight(serviceId: string, height: number): Promise<bigint> {
    this.calls.cupr++;
    if (this.fails.cupr > 0) {
      this.fails.cupr--;
      return Promise.reject(new ChainUnavailableError('cupr'));
    }
    const v = this.cupr.get(`${serviceId}@${height}`);
    return v === undefined ? Promise.reject(new ChainNotFoundError('service', 'none')) : Promise.resolve(v);
  }
  getApplication(): never {
    throw new Error('not used');
  }
  getService(): never {
    throw new Error('not used');
  }
  getSupplier(): never {
    throw new Error('not used');
  }
  getAccount(): never {
    throw new Error('not used');
  }
  getSession(): never {
    throw new Error('not used');
  }
  getSharedParams(): never {
    throw new Error('not used');
  }
  getSharedParamsAtHeight(): never {
    throw new Error('not used');
  }
  getProofParams(): never {
    throw new Error('not used');
  }
  getSessionParams(): never {
    throw new Error('not used');
  }
}

const PUB_CFG: StreamPublisherConfig = {
  max_len: 0,
  ttl_seconds: 600,
  batch_size: 10,
  flush_interval_ms: 1,
  max_buffered: 100,
  ack_timeout_ms: 1_000,
};

interface Built {
  mp: MinedRelayPublisher;
  publisher: StreamPublisher;
  chain: MiningChain;
  registry: Registry;
  pipeline: RelayPipelineMetrics;
  sleeps: number[];
  logs: Record<string, unknown>[];
}

function build(
  opts: {
    chain?: MiningChain;
    publisher?: Partial<StreamPublisherConfig>;
    cfg?: Partial<MinedRelayPublisherConfig>;
    signer?: RelaySigner;
  } = {},
): Built {
  const chain = opts.chain ?? new MiningChain();
  const caches = new ChainCaches({
    redis: r.client,
    keys: r.keys(),
    log: silent,
    metrics: createCacheMetrics(new Registry()),
    chain,
  });
  cleanups.push(() => caches.close());
  const registry = new Registry();
  const publisher = new StreamPublisher(
    {
      redis: r.client,
      keys: r.keys(),
      log: silent,
      metrics: new StreamPublisherMetrics(new Registry()),
    },
    { ...PUB_CFG, ...opts.publisher },
  );
  cleanups.push(() => publisher.close(1_000));
  const counters = {
    relaysDropped: new Counter({
      name: 'ha_relayer_relays_dropped_total',
      help: 'dropped',
      labelNames: ['service_id', 'reason'],
      registers: [registry],
    }),
    relaysSkippedDifficulty: new Counter({
      name: 'ha_relayer_relays_skipped_difficulty_total',
      help: 'skipped',
      labelNames: ['service_id'],
      registers: [registry],
    }),
  };
  const pipeline = new RelayPipelineMetrics(registry);
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logs.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      cb();
    },
  });
  const sleeps: number[] = [];
  const mp = new MinedRelayPublisher(
    {
      caches,
      signer: opts.signer ?? signer,
      publisher,
      log: pino({ level: 'warn' }, sink),
      counters,
      metrics: pipeline,
      nowNs: () => NOW_NS,
      sleep: (ms) => {
        sleeps.push(ms);
        return Promise.resolve();
      },
    },
    opts.cfg,
  );
  return { mp, publisher, chain, registry, pipeline, sleeps, logs };
}

async function series(registry: Registry, name: string): Promise<unknown[]> {
  const m = registry.getSingleMetric(name);
  if (m === undefined) throw new Error(`no metric ${name}`);
  return (await m.get()).values.map((v) => ({ labels: v.labels, value: v.value }));
}

async function streamEntries(b: Built, supplier = SUPPLIER): Promise<MinedRelayMessage[]> {
  await b.publisher.flush();
  const entries = await r.client.xrangeBuffer(r.keys().relayStream(supplier), '-', '+');
  return entries.map(([, fields]) => {
    expect(fields.map((f, i) => (i % 2 === 0 ? f.toString() : 'bytes'))).toEqual(['data', 'bytes']);
    return decodeMinedRelayMessage(fields[1]!);
  });
}

function sha256(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(bytes).digest());
}

function plain(b: Uint8Array): Uint8Array {
  return new Uint8Array(b);
}

/** The relay hash the publisher must produce for `req` + BODY, computed step by step here. */
function expectedRelayHash(req: RelayRequest): Uint8Array {
  const signed = signer.sign(
    {
      meta: { sessionHeader: req.meta!.sessionHeader, supplierOperatorSignature: Buffer.alloc(0) },
      payload: Buffer.from(BODY),
      relayMinerError: undefined,
      payloadHash: Buffer.alloc(0),
    },
    SUPPLIER,
  );
  if (!signed.ok) throw new Error(signed.reason);
  return mineRelay(req, signed.response).hash;
}

describe('MinedRelayPublisher: the mined relay (relayer.md §10)', () => {
  it('publishes Relay{request as received, response re-signed over the raw body}', async () => {
    const b = build();
    const req = request();
    const result = await b.mp.publish({
      request: req,
      rawBody: BODY,
      supplierAddress: SUPPLIER,
      arrivalHeight: 23,
    });
    if (!result.ok) throw new Error(`${result.code}: ${result.reason}`);
    const msg = result.message;

    // relay_bytes: the request exactly as received, and a response without payload.
    const relay = decodeRelay(msg.relay_bytes);
    if (!relay.ok) throw new Error(relay.reason);
    expect(plain(encodeRelayRequest(relay.value.req!))).toEqual(plain(encodeRelayRequest(req)));
    const res = relay.value.res!;
    expect(res.meta!.sessionHeader).toEqual(HEADER);
    expect(plain(res.payload)).toEqual(new Uint8Array(0));
    expect(res.relayMinerError).toBeUndefined();
    expect(plain(res.payloadHash)).toEqual(sha256(BODY));
    // The supplier signature verifies over the response carrying SHA-256(raw body).
    const digest = supplierSignatureDigest(relayResponseSignableHash(res));
    expect(
      backend.ecdsaVerify(res.meta!.supplierOperatorSignature, digest, publicKeyFromPrivate(SUPPLIER_KEY)),
    ).toBe(true);

    expect(result.relayHash).toEqual(sha256(msg.relay_bytes));
    expect(msg).toEqual<MinedRelayMessage>({
      relay_hash: sha256(msg.relay_bytes),
      relay_bytes: msg.relay_bytes,
      compute_units_per_relay: 5n,
      session_id: 'sess1',
      session_end_height: 30,
      supplier_operator_address: SUPPLIER,
      service_id: 'anvil',
      application_address: 'pokt1app',
      arrival_block_height: 23,
      published_at_unix_nano: NOW_NS,
      session_start_height: 21,
    });

    // The stream entry, read back with XRANGE, is the same message field by field.
    const [entry, ...rest] = await streamEntries(b);
    expect(rest).toEqual([]);
    expect({
      ...entry!,
      relay_hash: plain(entry!.relay_hash),
      relay_bytes: plain(entry!.relay_bytes),
    }).toEqual({
      ...msg,
      relay_hash: plain(msg.relay_hash),
      relay_bytes: plain(msg.relay_bytes),
    });
    expect(await series(b.registry, 'ha_relayer_relays_dropped_total')).toEqual([]);
  });

  it('is deterministic: the same relay gives the same bytes and hash', async () => {
    const b = build();
    const input = { request: request(), rawBody: BODY, supplierAddress: SUPPLIER, arrivalHeight: 23 };
    const a1 = await b.mp.publish(input);
    const a2 = await b.mp.publish(input);
    if (!a1.ok || !a2.ok) throw new Error('not published');
    expect(plain(a1.message.relay_bytes)).toEqual(plain(a2.message.relay_bytes));
    expect(a1.relayHash).toEqual(expectedRelayHash(request()));
  });

  it('weights a CUPR of 0 as 1', async () => {
    const chain = new MiningChain();
    chain.cupr.set('anvil@21', 0n);
    const b = build({ chain });
    const result = await b.mp.publish({
      request: request(),
      rawBody: BODY,
      supplierAddress: SUPPLIER,
      arrivalHeight: 21,
    });
    expect(result.ok && result.message.compute_units_per_relay).toBe(1n);
  });
});

describe('MinedRelayPublisher: difficulty', () => {
  it('skips every relay when the target is all zero bytes', async () => {
    const chain = new MiningChain();
    chain.difficulty.set('anvil@21', new Uint8Array(32));
    const b = build({ chain });
    const result = await b.mp.publish({
      request: request(),
      rawBody: BODY,
      supplierAddress: SUPPLIER,
      arrivalHeight: 22,
    });
    expect(result).toEqual<MinedPublishResult>({
      ok: false,
      code: 'MINE_BELOW_DIFFICULTY',
      reason: 'relay hash is not below the difficulty target of service anvil at height 21',
    });
    expect(await series(b.registry, 'ha_relayer_relays_skipped_difficulty_total')).toEqual([
      { labels: { service_id: 'anvil' }, value: 1 },
    ]);
    expect(await series(b.registry, 'ha_relayer_relays_dropped_total')).toEqual([]);
    expect(b.chain.calls.cupr).toBe(0);
    expect(await streamEntries(b)).toEqual([]);
  });

  it('compares strictly: a target equal to the relay hash skips the relay', async () => {
    const chain = new MiningChain();
    chain.difficulty.set('anvil@21', expectedRelayHash(request()));
    const b = build({ chain });
    const input = { request: request(), rawBody: BODY, supplierAddress: SUPPLIER, arrivalHeight: 22 };
    expect(await b.mp.publish(input)).toMatchObject({ ok: false, code: 'MINE_BELOW_DIFFICULTY' });
  });

  it('compares strictly: a target one above the relay hash publishes it', async () => {
    const hash = expectedRelayHash(request());
    const above = Uint8Array.from(hash);
    let i = above.length - 1;
    while (above[i] === 0xff) above[i--] = 0;
    above[i]! += 1;
    const chain = new MiningChain();
    chain.difficulty.set('anvil@21', above);
    const b = build({ chain });
    const input = { request: request(), rawBody: BODY, supplierAddress: SUPPLIER, arrivalHeight: 22 };
    expect(await b.mp.publish(input)).toMatchObject({ ok: true, relayHash: hash });
  });

  it.each([
    ['the lookup fails', 'lookup_error', (c: MiningChain) => (c.fails.difficulty = 1)],
    ['the chain has no difficulty for the service', 'not_found', () => undefined],
    [
      'the target is empty',
      'empty_target',
      (c: MiningChain) => c.difficulty.set('anvil@21', new Uint8Array(0)),
    ],
  ])('uses the base target when %s', async (_name, reason, setup) => {
    const chain = new MiningChain();
    setup(chain);
    const b = build({ chain });
    const result = await b.mp.publish({
      request: request(),
      rawBody: BODY,
      supplierAddress: SUPPLIER,
      arrivalHeight: 22,
    });
    expect(result.ok).toBe(true);
    expect(await series(b.registry, 'ha_relayer_difficulty_base_fallbacks_total')).toEqual([
      { labels: { service_id: 'anvil', reason }, value: 1 },
    ]);
    expect(await streamEntries(b)).toHaveLength(1);
  });

  it('uses the base target without a lookup when the session start is 0', async () => {
    const chain = new MiningChain();
    chain.cupr.set('anvil@0', 3n);
    const b = build({ chain });
    const result = await b.mp.publish({
      request: request({ sessionStartBlockHeight: 0n }),
      rawBody: BODY,
      supplierAddress: SUPPLIER,
      arrivalHeight: 22,
    });
    expect(result).toMatchObject({
      ok: true,
      message: { compute_units_per_relay: 3n, session_start_height: 0 },
    });
    expect(b.chain.calls.difficulty).toBe(0);
    expect(await series(b.registry, 'ha_relayer_difficulty_base_fallbacks_total')).toEqual([
      { labels: { service_id: 'anvil', reason: 'no_start_height' }, value: 1 },
    ]);
    expect(BASE_RELAY_DIFFICULTY_TARGET).toEqual(new Uint8Array(32).fill(0xff));
  });
});

describe('MinedRelayPublisher: compute units per relay', () => {
  it('retries a failed lookup with a doubling delay and publishes once it answers', async () => {
    const chain = new MiningChain();
    chain.fails.cupr = 2;
    const b = build({ chain, cfg: { cupr_lookup_attempts: 4, cupr_retry_delay_ms: 20 } });
    const result = await b.mp.publish({
      request: request(),
      rawBody: BODY,
      supplierAddress: SUPPLIER,
      arrivalHeight: 22,
    });
    expect(result).toMatchObject({ ok: true, message: { compute_units_per_relay: 5n } });
    expect(b.sleeps).toEqual([20, 40]);
    expect(b.chain.calls.cupr).toBe(3);
    expect(await series(b.registry, 'ha_relayer_cupr_lookup_retries_total')).toEqual([
      { labels: { service_id: 'anvil' }, value: 2 },
    ]);
  });

  it('drops the relay (never guesses) when every attempt fails', async () => {
    const chain = new MiningChain();
    chain.fails.cupr = 100;
    const b = build({ chain });
    const result = await b.mp.publish({
      request: request(),
      rawBody: BODY,
      supplierAddress: SUPPLIER,
      arrivalHeight: 22,
    });
    expect(result).toMatchObject({ ok: false, code: 'MINE_CUPR_UNAVAILABLE' });
    expect(!result.ok && result.reason).toMatch(
      /^compute units per relay of service anvil at height 21 unavailable after 4 attempts: /,
    );
    expect(b.sleeps).toEqual([50, 100, 200]);
    expect(b.chain.calls.cupr).toBe(4);
    expect(await series(b.registry, 'ha_relayer_relays_dropped_total')).toEqual([
      { labels: { service_id: 'anvil', reason: 'cupr_unavailable' }, value: 1 },
    ]);
    expect(
      b.logs.map((l) => ({ level: l['level'], service_id: l['service_id'], attempts: l['attempts'] })),
    ).toEqual([{ level: 50, service_id: 'anvil', attempts: 4 }]);
    expect(await streamEntries(b)).toEqual([]);
  });

  it('drops at once when the service has no CUPR at the start height', async () => {
    const chain = new MiningChain();
    chain.cupr.clear();
    const b = build({ chain });
    const result = await b.mp.publish({
      request: request(),
      rawBody: BODY,
      supplierAddress: SUPPLIER,
      arrivalHeight: 22,
    });
    expect(result).toEqual<MinedPublishResult>({
      ok: false,
      code: 'MINE_CUPR_UNAVAILABLE',
      reason: 'service anvil not found at height 21',
    });
    expect(b.sleeps).toEqual([]);
    expect(b.chain.calls.cupr).toBe(1);
    expect(await series(b.registry, 'ha_relayer_relays_dropped_total')).toEqual([
      { labels: { service_id: 'anvil', reason: 'cupr_unavailable' }, value: 1 },
    ]);
  });

  it('with one attempt configured, drops after a single failure', async () => {
    const chain = new MiningChain();
    chain.fails.cupr = 1;
    const b = build({ chain, cfg: { cupr_lookup_attempts: 0 } });
    const result = await b.mp.publish({
      request: request(),
      rawBody: BODY,
      supplierAddress: SUPPLIER,
      arrivalHeight: 22,
    });
    expect(result).toMatchObject({ ok: false, code: 'MINE_CUPR_UNAVAILABLE' });
    expect(b.chain.calls.cupr).toBe(1);
    expect(b.sleeps).toEqual([]);
  });
});

describe('MinedRelayPublisher: refusals', () => {
  it.each<[string, RelayRequest, string, string]>([
    ['no session header', request(null), SUPPLIER, 'missing session header'],
    ['an empty session id', request({ sessionId: '' }), SUPPLIER, 'missing session id'],
    ['an empty application', request({ applicationAddress: '' }), SUPPLIER, 'missing application address'],
    ['an empty service', request({ serviceId: '' }), SUPPLIER, 'missing service id'],
    ['no supplier', request({}, ''), '', 'missing supplier operator address'],
    [
      'a request addressed to another supplier',
      request({}, STRANGER),
      SUPPLIER,
      `request is addressed to supplier ${STRANGER}, not ${SUPPLIER}`,
    ],
    [
      'a negative start height',
      request({ sessionStartBlockHeight: -1n }),
      SUPPLIER,
      'session heights -1..30 out of range',
    ],
    [
      'an end height beyond 2^53',
      request({ sessionEndBlockHeight: 1n << 60n }),
      SUPPLIER,
      `session heights 21..${1n << 60n} out of range`,
    ],
  ])('incomplete: %s', async (_name, req, supplier, reason) => {
    const b = build();
    expect(
      await b.mp.publish({ request: req, rawBody: BODY, supplierAddress: supplier, arrivalHeight: 22 }),
    ).toEqual<MinedPublishResult>({
      ok: false,
      code: 'MINE_INCOMPLETE',
      reason,
    });
    const dropped = (await series(b.registry, 'ha_relayer_relays_dropped_total')) as {
      labels: { reason: string };
    }[];
    expect(dropped.map((d) => d.labels.reason)).toEqual(['incomplete']);
    expect(b.chain.calls).toEqual({ difficulty: 0, cupr: 0 });
  });

  it('incomplete: an arrival height that is not a non-negative integer', async () => {
    const b = build();
    for (const h of [-1, 1.5, Number.NaN]) {
      expect(
        await b.mp.publish({
          request: request(),
          rawBody: BODY,
          supplierAddress: SUPPLIER,
          arrivalHeight: h,
        }),
      ).toEqual({
        ok: false,
        code: 'MINE_INCOMPLETE',
        reason: `arrival height ${h} is not a non-negative integer`,
      });
    }
  });

  it('an empty backend body cannot be signed: dropped as empty_body', async () => {
    const b = build();
    const result = await b.mp.publish({
      request: request(),
      rawBody: new Uint8Array(0),
      supplierAddress: SUPPLIER,
      arrivalHeight: 22,
    });
    expect(result).toEqual<MinedPublishResult>({
      ok: false,
      code: 'MINE_SIGN_FAILED',
      reason: 'SIGN_EMPTY_PAYLOAD: refusing to sign a response with an empty payload',
    });
    expect(await series(b.registry, 'ha_relayer_relays_dropped_total')).toEqual([
      { labels: { service_id: 'anvil', reason: 'empty_body' }, value: 1 },
    ]);
    expect(await streamEntries(b)).toEqual([]);
  });

  it('a supplier whose key is not held: dropped as supplier_not_owned', async () => {
    const b = build();
    const result = await b.mp.publish({
      request: request({}, STRANGER),
      rawBody: BODY,
      supplierAddress: STRANGER,
      arrivalHeight: 22,
    });
    expect(result).toEqual<MinedPublishResult>({
      ok: false,
      code: 'MINE_SIGN_FAILED',
      reason: `SIGN_SUPPLIER_NOT_OWNED: no key held for supplier ${STRANGER}`,
    });
    expect(await series(b.registry, 'ha_relayer_relays_dropped_total')).toEqual([
      { labels: { service_id: 'anvil', reason: 'supplier_not_owned' }, value: 1 },
    ]);
  });

  it('a fault of the signing backend is a counted drop, not an exception', async () => {
    const faulty = new RelaySigner(
      {
        backend: {
          ecdsaSign: () => {
            throw new Error('signing backend unavailable');
          },
        },
        log: silent,
      },
      [SUPPLIER_KEY],
    );
    const b = build({ signer: faulty });
    const result = await b.mp.publish({
      request: request(),
      rawBody: BODY,
      supplierAddress: SUPPLIER,
      arrivalHeight: 22,
    });
    expect(result).toEqual<MinedPublishResult>({
      ok: false,
      code: 'MINE_SIGN_FAILED',
      reason: 'signing failed: signing backend unavailable',
    });
    expect(await series(b.registry, 'ha_relayer_relays_dropped_total')).toEqual([
      { labels: { service_id: 'anvil', reason: 'sign_failed' }, value: 1 },
    ]);
    expect(b.logs.map((l) => ({ level: l['level'], msg: l['msg'] }))).toEqual([
      { level: 50, msg: 'signing a mined relay response failed' },
    ]);
  });

  it('a session end height of 0 is refused by the stream publisher', async () => {
    const chain = new MiningChain();
    const b = build({ chain });
    const result = await b.mp.publish({
      request: request({ sessionEndBlockHeight: 0n }),
      rawBody: BODY,
      supplierAddress: SUPPLIER,
      arrivalHeight: 22,
    });
    expect(result).toEqual<MinedPublishResult>({
      ok: false,
      code: 'MINE_PUBLISH_REFUSED',
      reason: 'PUBLISH_INVALID: session_end_height must be > 0',
    });
    expect(await series(b.registry, 'ha_relayer_relays_dropped_total')).toEqual([
      { labels: { service_id: 'anvil', reason: 'publish_invalid' }, value: 1 },
    ]);
  });

  it('a full publisher buffer and a closed publisher are counted drops', async () => {
    const b = build({ publisher: { max_buffered: 0 } });
    const input = { request: request(), rawBody: BODY, supplierAddress: SUPPLIER, arrivalHeight: 22 };
    expect(await b.mp.publish(input)).toMatchObject({ ok: false, code: 'MINE_PUBLISH_REFUSED' });
    await b.publisher.close(100);
    expect(await b.mp.publish(input)).toEqual<MinedPublishResult>({
      ok: false,
      code: 'MINE_PUBLISH_REFUSED',
      reason: 'PUBLISH_CLOSED: publisher is closed',
    });
    expect(await series(b.registry, 'ha_relayer_relays_dropped_total')).toEqual([
      { labels: { service_id: 'anvil', reason: 'publish_buffer_full' }, value: 1 },
      { labels: { service_id: 'anvil', reason: 'publish_closed' }, value: 1 },
    ]);
  });
});
