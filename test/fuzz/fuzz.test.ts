/**
 * Hostile input, seed-fixed CI subset of the fuzz targets (test/fuzz/targets.ts): every target runs
 * a fixed number of generated cases with 0 crashes and 0 hangs, and the same generators drive a
 * real in-process relayer (localnet chain, demo backends, real Redis under a private prefix):
 * one-byte mutations of a signed request are never admitted, hostile WebSocket frames close with
 * the close code the frame target predicts while the relayer keeps serving, hostile HTTP bodies get
 * 400, and random NDJSON bodies stream back as signed batches that reassemble to the input.
 * The config and genesis loaders get regression cases for the inputs fuzzing found.
 *
 * The 100,000-case run is `npm run bench -- fuzz` (bench/fuzz/fuzz.bench.ts).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket, type RawData } from 'ws';
import { ConfigError } from '../../core/config/index.js';
import { GenesisInvalidError, loadGenesisFile } from '../../localnet/index.js';
import { validateMinerConfig } from '../../miner/index.js';
import { bigIntToBytes, bytesToBigInt, concatBytes } from '../../core/index.js';
import {
  SECP256K1_N,
  decodeRelayRequest,
  encodeRelayRequest,
  type SessionHeader,
} from '../../protocol/index.js';
import { WS_CLOSE, validateRelayerConfig } from '../../relayer/index.js';
import { splitStreamBatches } from '../../rings/index.js';
import { APP, SUPPLIER } from '../e2e/localnet-fixtures.js';
import { seededUint32 } from '../helpers/prng.js';
import { recordReliability } from '../helpers/reliability.js';
import { STREAM_SERVICE, startRelayerStack, type RelayerStack } from '../e2e/relayer-fixtures.js';
import {
  configTarget,
  describeFailure,
  fuzzRecord,
  genesisTarget,
  hostileBytes,
  protoField,
  relayRequestTarget,
  ringSignatureTarget,
  runFuzzTarget,
  signedRequests,
  streamBatchesTarget,
  websocketFrameTarget,
  wsPayloads,
  type FuzzTarget,
  type WsCase,
} from './targets.js';

const SEED = 0x5eed_f022;

let s: RelayerStack;
let header: SessionHeader;
let dir: string;

beforeAll(async () => {
  s = await startRelayerStack();
  header = await s.session('anvil');
  dir = mkdtempSync(join(tmpdir(), 'fuzz-'));
}, 60_000);

afterAll(async () => {
  await s?.close();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
}, 30_000);

const examples = (): { relayer: string; miner: string } => ({
  relayer: readFileSync(join(import.meta.dirname, '..', '..', 'config.relayer.example.yaml'), 'utf8'),
  miner: readFileSync(join(import.meta.dirname, '..', '..', 'config.miner.example.yaml'), 'utf8'),
});
const genesisSample = (): string =>
  readFileSync(join(import.meta.dirname, '..', '..', 'localnet', 'genesis.sample.yaml'), 'utf8');

describe('fuzz targets, fixed seed: 0 crashes, 0 hangs', () => {
  const cases: [string, number, () => FuzzTarget<never>, string[]][] = [
    [
      'relay-request',
      1_500,
      () => relayRequestTarget(s.relayer.core, header) as FuzzTarget<never>,
      ['ACCEPTED', 'PROTO_MALFORMED', 'RING_SIG_INVALID', 'RING_SIG_MALFORMED'],
    ],
    [
      'ring-signature',
      500,
      () => ringSignatureTarget() as FuzzTarget<never>,
      ['ACCEPTED', 'RING_SIG_INVALID', 'RING_SIG_MALFORMED', 'RING_SIG_NOT_MEMBER', 'RING_SIG_EMPTY_RING'],
    ],
    [
      'websocket-frame',
      1_500,
      () => websocketFrameTarget(s.relayer.core, header) as FuzzTarget<never>,
      ['ACCEPTED', 'close_4001_PROTO_MALFORMED', 'close_4001_RING_SIG_INVALID', 'close_mapped'],
    ],
    [
      'stream-batches',
      1_500,
      () => streamBatchesTarget(header) as FuzzTarget<never>,
      ['ACCEPTED', 'RESPONSE_MALFORMED'],
    ],
    ['config', 500, () => configTarget(examples()) as FuzzTarget<never>, ['ACCEPTED', 'CONFIG_INVALID']],
    [
      'genesis',
      400,
      () => genesisTarget(genesisSample(), dir) as FuzzTarget<never>,
      ['ACCEPTED', 'LOCALNET_GENESIS_INVALID'],
    ],
  ];
  it.each(cases)(
    '%s: %i cases',
    async (name, numRuns, make, expectedVerdicts) => {
      const report = await runFuzzTarget(make(), { seed: SEED, numRuns });
      recordReliability('fuzz', `${name}-ci`, fuzzRecord(report));
      expect(report.failure === undefined ? 'no failure' : describeFailure(report)).toBe('no failure');
      expect({
        target: report.target,
        cases: report.cases,
        crashes: report.crashes,
        hangs: report.hangs,
      }).toEqual({
        target: name,
        cases: numRuns,
        crashes: 0,
        hangs: 0,
      });
      // The generators reach both sides of every target: accepted inputs and each refusal class.
      expect(Object.keys(report.verdicts)).toEqual(expect.arrayContaining(expectedVerdicts));
      expect(Object.values(report.verdicts).reduce((a, b) => a + b, 0)).toBe(numRuns);
    },
    60_000,
  );
});

describe('the harness', () => {
  const accept = { accepted: true, code: 'ACCEPTED' } as const;

  it('stops at the first crash and reports a seed and path that replay it', async () => {
    const report = await runFuzzTarget(
      {
        name: 'probe',
        arbitrary: fc.nat(1_000),
        budgetMs: 1_000,
        run: (n: number) => {
          if (n > 900) throw new TypeError(`boom ${n}`);
          return accept;
        },
        show: String,
      },
      { seed: 7, numRuns: 2_000 },
    );
    expect({ crashes: report.crashes, hangs: report.hangs, kind: report.failure?.kind }).toEqual({
      crashes: 1,
      hangs: 0,
      kind: 'crash',
    });
    expect(report.cases).toBeLessThan(2_000);
    const found = Number(report.failure!.counterexample);
    expect(found).toBeGreaterThan(900);
    expect(report.failure!.error).toContain(`TypeError: boom ${found}`);
    const replay = fc.check(
      fc.property(fc.nat(1_000), (n) => n <= 900),
      { seed: report.failure!.seed, path: report.failure!.path, endOnFailure: true },
    );
    expect(replay.counterexample).toEqual([found]);
  });

  it('counts a synchronous case over its budget and an unanswered async case as hangs', async () => {
    const slow = await runFuzzTarget(
      {
        name: 'slow',
        arbitrary: fc.constant(0),
        budgetMs: 20,
        run: () => {
          const end = performance.now() + 40;
          while (performance.now() < end);
          return accept;
        },
        show: String,
      },
      { seed: 1, numRuns: 5 },
    );
    expect({ cases: slow.cases, hangs: slow.hangs, crashes: slow.crashes, kind: slow.failure?.kind }).toEqual(
      {
        cases: 1,
        hangs: 1,
        crashes: 0,
        kind: 'hang',
      },
    );
    const stuck = await runFuzzTarget(
      {
        name: 'stuck',
        arbitrary: fc.constant(0),
        budgetMs: 50,
        run: () => new Promise<never>(() => undefined),
        show: String,
      },
      { seed: 1, numRuns: 5 },
    );
    expect({ cases: stuck.cases, hangs: stuck.hangs, kind: stuck.failure?.kind }).toEqual({
      cases: 1,
      hangs: 1,
      kind: 'hang',
    });
    expect(stuck.failure!.error).toContain('no verdict within 50 ms');
  });
});

/** Byte ranges of a field's value inside an encoded request. */
function rangeOf(haystack: Uint8Array, needle: Uint8Array): [number, number] {
  const at = Buffer.from(haystack).indexOf(Buffer.from(needle));
  if (at < 0) throw new Error('field bytes not found in the request');
  return [at, at + needle.length];
}

describe('a signed relay request against the real admission', () => {
  const admit = (bytes: Uint8Array) => {
    const core = s.relayer.core;
    const d = core.decode(bytes);
    if (!d.ok) return Promise.resolve(d);
    return core.admit(d.request, bytes, {
      transport: 'http',
      rpcType: 'jsonrpc',
      arrivalHeight: core.heights.currentHeight,
    });
  };

  it('refuses every one-byte change; signature and payload bytes with the ring-signature refusal', async () => {
    const { bytes, request } = s.signRequest(
      header,
      s.httpPayload({ body: '{"jsonrpc":"2.0","id":7,"method":"eth_chainId"}' }),
    );
    const sig = rangeOf(bytes, request.meta!.signature);
    const payload = rangeOf(bytes, request.payload);
    const reasons = new Map<string, number>();
    for (let i = 0; i < bytes.length; i++) {
      const mutated = Uint8Array.from(bytes);
      mutated[i] = mutated[i]! ^ (i % 2 === 0 ? 0x01 : 0x80);
      const r = await admit(mutated);
      if (r.ok) throw new Error(`byte ${i} changed and the request was still admitted`);
      reasons.set(r.reason, (reasons.get(r.reason) ?? 0) + 1);
      const inSig = i >= sig[0] && i < sig[1];
      const inPayload = i >= payload[0] && i < payload[1];
      if (inSig || inPayload) {
        // Both are covered by the ring signature (the payload signed, the signature verified).
        expect({ i, reason: r.reason, status: r.httpStatus, ws: r.wsCloseCode }).toEqual({
          i,
          reason: 'validation_failed',
          status: 403,
          ws: WS_CLOSE.VALIDATION_FAILED,
        });
        expect(r.message).toMatch(/^ring signature (invalid|malformed): /);
      } else {
        expect(r.httpStatus).toBeGreaterThanOrEqual(400);
        expect(r.httpStatus).toBeLessThan(500);
      }
    }
    expect(reasons.get('validation_failed')).toBeGreaterThanOrEqual(
      sig[1] - sig[0] + payload[1] - payload[0],
    );
    expect(reasons.get('invalid_relay_request')).toBeGreaterThan(0);
    // The untouched request is admitted (the session, ring and meter are real).
    expect((await admit(bytes)).ok).toBe(true);
  }, 60_000);

  it('admits the changes outside what the signature covers, as ring-go does', async () => {
    const { request } = s.signRequest(
      header,
      s.httpPayload({ body: '{"jsonrpc":"2.0","id":8,"method":"eth_chainId"}' }),
    );
    const sig = Uint8Array.from(request.meta!.signature);
    const withSig = (signature: Uint8Array): Uint8Array =>
      encodeRelayRequest({
        ...request,
        meta: { ...request.meta!, signature: Buffer.from(signature) },
      });
    // 1. bytes after the last ring entry: ignored by ring-go's Deserialize.
    const trailing = withSig(concatBytes(sig, Uint8Array.of(1, 2, 3)));
    // 2. a response scalar s_0 + N: read modulo N, the same scalar.
    const s0 = bytesToBigInt(sig.subarray(69, 101));
    const plusN = Uint8Array.from(sig);
    if (s0 + SECP256K1_N < 1n << 256n) plusN.set(bigIntToBytes(s0 + SECP256K1_N, 32), 69);
    // 3. an unknown protobuf field: skipped by the decoder, not part of the re-encoded signable bytes.
    const unknown = concatBytes(encodeRelayRequest(request), protoField(99, 2, Uint8Array.of(0xaa)));
    for (const bytes of [trailing, withSig(plusN), unknown]) {
      const d = decodeRelayRequest(bytes);
      expect(d.ok).toBe(true);
      const r = await admit(bytes);
      expect(r.ok ? 'admitted' : `${r.reason}: ${r.message}`).toBe('admitted');
    }
    // A non-canonical scalar only exists when s_0 + N still fits 32 bytes.
    expect(s0 + SECP256K1_N < 1n << 256n || bytesToBigInt(plusN.subarray(69, 101)) === s0).toBe(true);
  }, 60_000);

  it('answers hostile HTTP bodies with 400 and keeps serving', async () => {
    const fx = signedRequests(header, [
      s.httpPayload({ body: '{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}' }),
    ]);
    const bodies = fc.sample(hostileBytes(fx.encoded), { seed: SEED, numRuns: 300 });
    const malformed = bodies.filter((b) => !decodeRelayRequest(b).ok).slice(0, 40);
    expect(malformed.length).toBe(40);
    for (const body of malformed) {
      const res = await fetch(`${s.url}/`, { method: 'POST', body, headers: { 'Rpc-Type': '3' } });
      expect(res.status).toBe(400);
      await res.arrayBuffer();
    }
    const ok = s.signRequest(
      header,
      s.httpPayload({ body: '{"jsonrpc":"2.0","id":9,"method":"eth_blockNumber"}' }),
    );
    const res = await fetch(`${s.url}/`, { method: 'POST', body: ok.bytes, headers: { 'Rpc-Type': '3' } });
    const answer = new Uint8Array(await res.arrayBuffer());
    const v = s.verifyHttp(answer, header);
    expect(v.ok && v.status).toBe(200);
  }, 60_000);
});

/* ---------- WebSocket ---------- */

interface WsResult {
  code: number;
  frames: Buffer[];
}

function pathHeaders(h: SessionHeader): Record<string, string> {
  return {
    'Target-Service-Id': h.serviceId,
    'App-Address': APP.address,
    'Rpc-Type': '2',
    'Pocket-Session-Id': h.sessionId,
    'Pocket-Session-Start-Height': String(h.sessionStartBlockHeight),
    'Pocket-Session-End-Height': String(h.sessionEndBlockHeight),
    'Pocket-Supplier-Address': SUPPLIER.address,
  };
}

const toBuffer = (d: RawData): Buffer =>
  Buffer.isBuffer(d) ? d : Array.isArray(d) ? Buffer.concat(d) : Buffer.from(d);

/** One connection: send `frames`, collect answers until the relayer closes or `waitMs` passes. */
function wsExchange(
  url: string,
  frames: { bytes: Uint8Array; binary: boolean }[],
  waitMs: number,
): Promise<WsResult> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, {
      headers: pathHeaders(header),
      skipUTF8Validation: true,
      maxPayload: 64 << 20,
    });
    const got: Buffer[] = [];
    const timer = setTimeout(() => {
      ws.close(1000, 'done');
      resolve({ code: 0, frames: got });
    }, waitMs);
    ws.on('message', (d: RawData) => got.push(toBuffer(d)));
    ws.on('open', () => {
      for (const f of frames) ws.send(f.bytes, { binary: f.binary });
    });
    ws.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, frames: got });
    });
    ws.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

describe('hostile WebSocket frames against the running bridge', () => {
  it('closes each of 200 hostile frames with the predicted code, then serves a valid relay', async () => {
    const target = websocketFrameTarget(s.relayer.core, header);
    const fx = signedRequests(header, wsPayloads());
    const frameArb = fc.oneof(
      fc.record({ bytes: hostileBytes(fx.encoded), isBinary: fc.boolean() }),
      // Large garbage within the 15 MiB read limit (filled from a seeded PRNG: fast to generate).
      fc.record({
        bytes: fc.tuple(fc.integer({ min: 256 * 1024, max: 1 << 20 }), fc.nat()).map(([n, seed]) => {
          const next = seededUint32(seed);
          return Uint8Array.from({ length: n }, () => next() & 0xff);
        }),
        isBinary: fc.boolean(),
      }),
      fc.record({
        bytes: fc.string({ unit: 'grapheme', maxLength: 200 }).map((t) => Buffer.from(t)),
        isBinary: fc.boolean(),
      }),
    );
    const sample = fc.sample(frameArb, { seed: SEED, numRuns: 400 });
    const relayPort = s.wsUrl;
    const compat = `ws://127.0.0.1:${s.relayer.websocketPort}`;
    let sent = 0;
    const codes = new Map<number, number>();
    for (const f of sample) {
      if (sent === 200) break;
      const c: WsCase = { kind: 'frame', bytes: f.bytes, isBinary: f.isBinary };
      const predicted = await target.run(c);
      if (predicted.accepted) continue; // a frame the relayer serves is not hostile
      const expectedCode = Number(/^close_(\d+)_/.exec(predicted.code)?.[1]);
      // uWS drops a text frame that is not UTF-8 (1006) before the bridge sees it; such frames go
      // to the compatibility listener, as PATH's do.
      const useCompat = !f.isBinary || sent % 2 === 1;
      const r = await wsExchange(
        useCompat ? compat : relayPort,
        [{ bytes: f.bytes, binary: f.isBinary }],
        5_000,
      );
      expect({ sent, code: r.code, frames: r.frames.length }).toEqual({
        sent,
        code: expectedCode,
        frames: 0,
      });
      codes.set(r.code, (codes.get(r.code) ?? 0) + 1);
      sent++;
    }
    expect(sent).toBe(200);
    expect(codes.get(WS_CLOSE.VALIDATION_FAILED)).toBe(200);
    // Still serving: a signed request gets a signed answer that verifies.
    for (const url of [relayPort, compat]) {
      const { bytes } = s.signRequest(
        header,
        Buffer.from('{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}'),
      );
      const r = await wsExchange(url, [{ bytes, binary: url === relayPort }], 1_500);
      expect(r.frames.length).toBeGreaterThanOrEqual(1);
      const v = s.verify(r.frames[0]!, header);
      expect(v.ok ? 'verified' : v.reason).toBe('verified');
    }
  }, 120_000);
});

/* ---------- streamed answers through the relayer ---------- */

describe('streamed NDJSON through the relayer', () => {
  it('reassembles random bodies from verified batches, nothing lost or duplicated', async () => {
    const sh = await s.session(STREAM_SERVICE);
    const bodies = fc.sample(
      fc.array(
        fc
          .string({ unit: 'grapheme', minLength: 1, maxLength: 300 })
          .filter((l) => !l.includes('\n') && l.trim() !== ''),
        { minLength: 1, maxLength: 250 },
      ),
      { seed: SEED, numRuns: 6 },
    );
    for (const lines of bodies) {
      const input = lines.join('\n') + '\n';
      const { bytes } = s.signRequest(
        sh,
        s.httpPayload({ method: 'POST', url: '/ndjson/echo?interval_ms=0', body: input }),
      );
      const res = await fetch(`${s.url}/`, { method: 'POST', body: bytes, headers: { 'Rpc-Type': '4' } });
      expect(res.status).toBe(200);
      const { batches, rest } = splitStreamBatches(new Uint8Array(await res.arrayBuffer()));
      expect(rest.length).toBe(0);
      let out = '';
      for (const b of batches) {
        const v = s.verifyHttp(b, sh);
        if (!v.ok) throw new Error(`batch refused: ${v.code} ${v.reason}`);
        out += Buffer.from(v.body).toString('utf8');
      }
      expect(out).toBe(input);
      expect(batches.length).toBeGreaterThanOrEqual(Math.ceil(lines.length / 100));
    }
  }, 60_000);
});

/* ---------- regressions found by the fuzz run ---------- */

describe('config and genesis loaders: inputs fuzzing found', () => {
  const deep = '['.repeat(5_000) + ']'.repeat(5_000);
  const deepMap = '{a: '.repeat(3_000) + '1' + '}'.repeat(3_000);
  const blockSeq = '- '.repeat(3_000) + 'x';

  it('refuses documents nested thousands deep every time, without overflowing the stack', () => {
    // Before the nesting bound, the second such document in one process aborted Node
    // ("RegExpCompiler Allocation failed - process out of memory").
    for (let k = 0; k < 3; k++) {
      for (const [text, depth] of [
        [deep, 5_000],
        [deepMap, 3_000],
        [blockSeq, 3_000],
      ] as const) {
        for (const validate of [validateRelayerConfig, validateMinerConfig]) {
          const err = catchError(() => validate(text, 'deep.yaml'));
          expect(err).toBeInstanceOf(ConfigError);
          expect((err as ConfigError).issues).toEqual([
            { path: '', message: `the document nests ${depth} levels deep; at most 64 are accepted` },
          ]);
        }
      }
    }
    const file = join(dir, 'deep-genesis.yaml');
    writeFileSync(file, deep);
    for (let k = 0; k < 3; k++) {
      const err = catchError(() => loadGenesisFile(file));
      expect(err).toBeInstanceOf(GenesisInvalidError);
      expect((err as GenesisInvalidError).issues).toEqual([
        { path: '(file)', message: 'nests 5000 levels deep; at most 64 are accepted' },
      ]);
    }
  });

  it('reports an unknown alias and an alias bomb as config issues, not as a ReferenceError', () => {
    const bomb =
      'a: &a [1, 2]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n' +
      'd: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n';
    for (const [text, message] of [
      [
        'listen_addr: *nowhere\n',
        'YAML error: Unresolved alias (the anchor must be set before the alias): nowhere',
      ],
      [bomb, 'YAML error: Excessive alias count indicates a resource exhaustion attack'],
    ] as const) {
      for (const validate of [validateRelayerConfig, validateMinerConfig]) {
        const err = catchError(() => validate(text, 'alias.yaml'));
        expect(err).toBeInstanceOf(ConfigError);
        expect((err as ConfigError).issues).toEqual([{ path: '', message }]);
      }
    }
  });

  it('still loads the example configs and the sample genesis', () => {
    const ex = examples();
    expect(validateRelayerConfig(ex.relayer).listen_addr).toBe('0.0.0.0:8080');
    expect(Object.keys(validateMinerConfig(ex.miner))).toContain('redis');
    const g = loadGenesisFile(join(import.meta.dirname, '..', '..', 'localnet', 'genesis.sample.yaml'));
    expect(g.chain_id).toBe('pocket');
  });
});

function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected an error');
}
