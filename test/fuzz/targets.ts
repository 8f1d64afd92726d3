/**
 * Fuzz targets for hostile input: relay request decoding and admission, ring signatures, WebSocket
 * gateway frames and close frames, streamed answers, relayer/miner config files and genesis files.
 *
 * Each target is `{ name, arbitrary, budgetMs, run, show }`: `run` feeds one generated input to the
 * production entry point and returns a verdict — accepted, or rejected with the documented typed
 * code. Anything else is a failure: an exception other than the documented one, a broken contract
 * (a forged request accepted, a streamed line lost, two EC backends disagreeing, a close frame
 * carrying an unsendable code), or a case slower than its time budget (a hang).
 *
 *   const report = await runFuzzTarget(ringSignatureTarget(), { seed: 42, numRuns: 1_000 });
 *   // report.crashes === 0, report.hangs === 0, report.verdicts = { RING_SIG_INVALID: 612, … }
 *
 * The relay request and WebSocket targets need a RelayCore of a running relayer (its strict decode
 * and its pre-admission: service, supplier key, supplier registry gate, session heights); the
 * others call pure functions.
 */
import { isUtf8 } from 'node:buffer';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import pino from 'pino';
import { parse as parseYamlText, stringify as stringifyYaml } from 'yaml';
import { ConfigError, MAX_YAML_NESTING } from '../../core/config/index.js';
import { RelayMinerError, bigIntToBytes, bytesToBigInt, bytesToHex, concatBytes } from '../../core/index.js';
import { GenesisInvalidError, loadGenesisFile, parseGenesis } from '../../localnet/index.js';
import { validateMinerConfig } from '../../miner/index.js';
import {
  SECP256K1_N,
  decodeRelayRequest,
  encodePoktHttpRequest,
  encodePoktHttpResponse,
  encodeRelayRequest,
  encodeRelayResponse,
  relayRequestSignableHash,
  sha256,
  type RelayResponse,
  type SessionHeader,
} from '../../protocol/index.js';
import {
  RelaySigner,
  WS_CLOSE,
  relayRequestBasicProblem,
  splitLines,
  validateRelayerConfig,
  type RelayCore,
  type RelayRefusal,
} from '../../relayer/index.js';
import { STREAM_MAX_LINE_BYTES } from '../../relayer/http-relay.js';
import {
  backendCloseFor,
  backendFrameIsBinary,
  gatewayCloseForBackend,
  isSendableCloseCode,
  resolveServiceId,
} from '../../relayer/websocket-bridge.js';
import {
  POKT_STREAM_DELIMITER,
  expectedRingAddresses,
  nobleBackend,
  prepareRing,
  selectBackend,
  signGatewayRelayRequest,
  signRingSignature,
  splitStreamBatches,
  verifyHttpRelayResponse,
  verifyRingSignature,
  type EcBackend,
  type RingVerifyResult,
} from '../../rings/index.js';
import { APP, GATEWAY, SUPPLIER } from '../e2e/localnet-fixtures.js';
import type { FuzzRecord } from '../helpers/reliability.js';

/* ---------- harness ---------- */

export type Verdict = { accepted: true; code: 'ACCEPTED' } | { accepted: false; code: string };

export interface FuzzTarget<T> {
  /** Kebab-case; names the reliability record `fuzz-<name>`. */
  readonly name: string;
  readonly arbitrary: fc.Arbitrary<T>;
  /** A case running longer than this is a hang. */
  readonly budgetMs: number;
  run(input: T): Verdict | Promise<Verdict>;
  /** Printable form of an input, for the failure report. */
  show(input: T): string;
}

/** A documented contract broken without an exception (e.g. a forged request accepted). */
export class FuzzInvariantError extends Error {
  override readonly name = 'FuzzInvariantError';
}

/** A case that did not finish within its budget. */
export class FuzzHangError extends Error {
  override readonly name = 'FuzzHangError';
}

export interface FuzzFailure {
  kind: 'crash' | 'hang';
  seed: number;
  /** fast-check replay path (pass with the seed to `fc.check` to re-run only that case). */
  path: string;
  counterexample: string;
  error: string;
}

export interface FuzzRunReport {
  target: string;
  seed: number;
  cases: number;
  crashes: number;
  hangs: number;
  duration_s: number;
  cases_per_second: number;
  /** How many cases ended with each verdict code. */
  verdicts: Record<string, number>;
  failure?: FuzzFailure;
}

const ACCEPTED: Verdict = { accepted: true, code: 'ACCEPTED' };
const rejected = (code: string): Verdict => ({ accepted: false, code });

/** Runs `run` and rejects with FuzzHangError once `budgetMs` has passed without an answer. */
async function withinBudget(run: () => Verdict | Promise<Verdict>, budgetMs: number): Promise<Verdict> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new FuzzHangError(`no verdict within ${budgetMs} ms`)), budgetMs);
  });
  try {
    return await Promise.race([Promise.resolve().then(run), hang]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * `numRuns` generated cases of `target` from `seed` (fast-check, no shrinking: the first failure
 * ends the run and is reported with its seed, replay path and counterexample).
 */
export async function runFuzzTarget<T>(
  target: FuzzTarget<T>,
  opts: { seed: number; numRuns: number },
): Promise<FuzzRunReport> {
  const verdicts: Record<string, number> = {};
  let cases = 0;
  let crashes = 0;
  let hangs = 0;
  const start = performance.now();
  const details = await fc.check(
    fc.asyncProperty(target.arbitrary, async (input) => {
      cases++;
      const t0 = performance.now();
      let verdict: Verdict;
      try {
        verdict = await withinBudget(() => target.run(input), target.budgetMs);
      } catch (err) {
        if (err instanceof FuzzHangError) hangs++;
        else crashes++;
        throw err;
      }
      // A synchronous call cannot be interrupted: measure it.
      const ms = performance.now() - t0;
      if (ms > target.budgetMs) {
        hangs++;
        throw new FuzzHangError(`case took ${ms.toFixed(0)} ms, budget ${target.budgetMs} ms`);
      }
      verdicts[verdict.code] = (verdicts[verdict.code] ?? 0) + 1;
    }),
    { seed: opts.seed, numRuns: opts.numRuns, endOnFailure: true },
  );
  const seconds = (performance.now() - start) / 1000;
  const report: FuzzRunReport = {
    target: target.name,
    seed: opts.seed,
    cases,
    crashes,
    hangs,
    duration_s: seconds,
    cases_per_second: cases / seconds,
    verdicts,
  };
  if (details.failed) {
    const err = details.errorInstance;
    report.failure = {
      kind: err instanceof FuzzHangError ? 'hang' : 'crash',
      seed: details.seed,
      path: details.counterexamplePath ?? '',
      counterexample: details.counterexample === null ? '?' : target.show(details.counterexample[0]),
      error: err instanceof Error ? `${err.name}: ${err.message}\n${err.stack ?? ''}` : String(err),
    };
  }
  return report;
}

/** One line naming a failure: seed, path and counterexample, for logs and assertion messages. */
export function describeFailure(r: FuzzRunReport): string {
  if (r.failure === undefined) return `${r.target}: no failure`;
  const f = r.failure;
  return (
    `${r.target}: ${f.kind} after ${r.cases} cases (seed ${f.seed}, path "${f.path}")\n` +
    `  input: ${f.counterexample}\n  error: ${f.error}`
  );
}

/** What a fuzz run writes to its reliability record (docs/RELIABILITY.md). */
export function fuzzRecord(r: FuzzRunReport): FuzzRecord {
  return {
    target: r.target,
    cases: r.cases,
    crashes: r.crashes,
    hangs: r.hangs,
    seed: r.seed,
    duration_s: Math.round(r.duration_s * 1000) / 1000,
  };
}

/* ---------- byte mutations ---------- */

export type ByteMutation =
  | { op: 'flip'; at: number; bit: number }
  | { op: 'set'; at: number; value: number }
  | { op: 'truncate'; at: number }
  | { op: 'extend'; bytes: Uint8Array }
  | { op: 'insert'; at: number; bytes: Uint8Array }
  | { op: 'delete'; at: number; len: number }
  | { op: 'duplicate'; at: number; len: number }
  | { op: 'splice'; at: number; other: number }
  | { op: 'unknown-field'; field: number; wire: 0 | 1 | 2 | 5; bytes: Uint8Array }
  | { op: 'huge-length'; field: number; len: bigint; bytes: Uint8Array }
  | { op: 'meta-length'; len: bigint }
  | { op: 'repeat-field'; field: 1 | 2; bytes: Uint8Array }
  | { op: 'groups'; depth: number }
  | { op: 'overlong-varint'; at: number };

export function varint(v: bigint | number): Uint8Array {
  let x = BigInt(v);
  const out: number[] = [];
  do {
    let b = Number(x & 0x7fn);
    x >>= 7n;
    if (x > 0n) b |= 0x80;
    out.push(b);
  } while (x > 0n);
  return Uint8Array.from(out);
}

/** One protobuf field: tag, then the value as the wire type wants it. */
export function protoField(field: number, wire: 0 | 1 | 2 | 5, bytes: Uint8Array): Uint8Array {
  const tag = varint(BigInt(field) * 8n + BigInt(wire));
  switch (wire) {
    case 0:
      return concatBytes(tag, varint(bytesToBigInt(bytes.subarray(0, 8))));
    case 1:
      return concatBytes(
        tag,
        Uint8Array.from({ length: 8 }, (_, i) => bytes[i] ?? 0),
      );
    case 5:
      return concatBytes(
        tag,
        Uint8Array.from({ length: 4 }, (_, i) => bytes[i] ?? 0),
      );
    default:
      return concatBytes(tag, varint(bytes.length), bytes);
  }
}

const smallBytes = (max: number): fc.Arbitrary<Uint8Array> => fc.uint8Array({ maxLength: max });

const byteMutationArb: fc.Arbitrary<ByteMutation> = fc.oneof(
  fc.record({ op: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ op: fc.constant('set' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('extend' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }) }),
  fc.record({
    op: fc.constant('insert' as const),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 32 }),
  }),
  fc.record({ op: fc.constant('delete' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 40 }) }),
  fc.record({ op: fc.constant('duplicate' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 64 }) }),
  fc.record({ op: fc.constant('splice' as const), at: fc.nat(), other: fc.nat() }),
  fc.record({
    op: fc.constant('unknown-field' as const),
    field: fc.oneof(fc.integer({ min: 3, max: 20 }), fc.integer({ min: 3, max: 536_870_911 })),
    wire: fc.constantFrom(0 as const, 1 as const, 2 as const, 5 as const),
    bytes: smallBytes(48),
  }),
  fc.record({
    op: fc.constant('huge-length' as const),
    field: fc.integer({ min: 1, max: 40 }),
    len: fc.bigInt({ min: 1n << 20n, max: (1n << 64n) - 1n }),
    bytes: smallBytes(16),
  }),
  fc.record({
    op: fc.constant('meta-length' as const),
    len: fc.oneof(fc.bigInt({ min: 0n, max: 4096n }), fc.bigInt({ min: 1n << 31n, max: (1n << 64n) - 1n })),
  }),
  fc.record({
    op: fc.constant('repeat-field' as const),
    field: fc.constantFrom(1 as const, 2 as const),
    bytes: smallBytes(64),
  }),
  fc.record({ op: fc.constant('groups' as const), depth: fc.integer({ min: 1, max: 400 }) }),
  fc.record({ op: fc.constant('overlong-varint' as const), at: fc.nat() }),
);

/** Applies one mutation; `others` supplies the second input of a splice. */
export function applyByteMutation(
  input: Uint8Array,
  m: ByteMutation,
  others: readonly Uint8Array[],
): Uint8Array {
  const b = Uint8Array.from(input);
  const pos = (at: number, extra = 0): number => (b.length + extra === 0 ? 0 : at % (b.length + extra));
  switch (m.op) {
    case 'flip': {
      if (b.length === 0) return b;
      const i = pos(m.at);
      b[i] = b[i]! ^ (1 << m.bit);
      return b;
    }
    case 'set': {
      if (b.length === 0) return b;
      b[pos(m.at)] = m.value;
      return b;
    }
    case 'truncate':
      return b.subarray(0, pos(m.at));
    case 'extend':
      return concatBytes(b, m.bytes);
    case 'insert': {
      const at = pos(m.at, 1);
      return concatBytes(b.subarray(0, at), m.bytes, b.subarray(at));
    }
    case 'delete': {
      const at = pos(m.at);
      return concatBytes(b.subarray(0, at), b.subarray(Math.min(b.length, at + m.len)));
    }
    case 'duplicate': {
      const at = pos(m.at);
      return concatBytes(b.subarray(0, at + m.len), b.subarray(at));
    }
    case 'splice': {
      const other = others.length === 0 ? b : others[m.other % others.length]!;
      const at = Math.min(pos(m.at, 1), other.length);
      return concatBytes(b.subarray(0, at), other.subarray(at));
    }
    case 'unknown-field':
      return concatBytes(b, protoField(m.field, m.wire, m.bytes));
    case 'huge-length':
      return concatBytes(b, varint(BigInt(m.field) * 8n + 2n), varint(m.len), m.bytes);
    case 'meta-length': {
      // The request opens with `0a <len>` (meta); replace that length.
      if (b[0] !== 0x0a) return b;
      let i = 1;
      while (i < b.length && b[i]! >= 0x80) i++;
      return concatBytes(Uint8Array.of(0x0a), varint(m.len), b.subarray(i + 1));
    }
    case 'repeat-field':
      return concatBytes(b, protoField(m.field, 2, m.bytes));
    case 'groups':
      // Start-group tags (field 1, wire type 3), nested `depth` deep, then the input.
      return concatBytes(new Uint8Array(m.depth).fill(0x0b), b);
    case 'overlong-varint': {
      const at = pos(m.at, 1);
      return concatBytes(
        b.subarray(0, at),
        new Uint8Array(10).fill(0xff),
        Uint8Array.of(0x01),
        b.subarray(at),
      );
    }
  }
}

/** Random bytes, random protobuf-shaped fields, or a valid input under 1–3 mutations. */
export function hostileBytes(bases: readonly Uint8Array[]): fc.Arbitrary<Uint8Array> {
  const mutated = fc
    .tuple(fc.nat(), fc.array(byteMutationArb, { minLength: 1, maxLength: 3 }))
    .map(([i, ms]) => ms.reduce((acc, m) => applyByteMutation(acc, m, bases), bases[i % bases.length]!));
  const fields = fc
    .array(
      fc.tuple(
        fc.integer({ min: 1, max: 6 }),
        fc.constantFrom(0 as const, 1 as const, 2 as const, 5 as const),
        smallBytes(80),
      ),
      { maxLength: 6 },
    )
    .map((fs) => concatBytes(...fs.map(([f, w, v]) => protoField(f, w, v))));
  return fc.oneof(
    { weight: 6, arbitrary: mutated },
    { weight: 2, arbitrary: fc.uint8Array({ maxLength: 512 }) },
    { weight: 2, arbitrary: fields },
  );
}

const bytesEqual = (a: Uint8Array, b: Uint8Array): boolean =>
  a.length === b.length && a.every((v, i) => v === b[i]);

const hexPreview = (b: Uint8Array, max = 600): string =>
  `${b.length} bytes ${bytesToHex(b.subarray(0, max))}${b.length > max ? '…' : ''}`;

/* ---------- signed relay requests ---------- */

export const native = selectBackend('native');

/** Public keys of APP's expected ring (APP + GATEWAY) for a session, in ring order. */
export function ringKeysFor(header: SessionHeader): Uint8Array[] {
  return expectedRingAddresses(
    APP.address,
    { delegateeGatewayAddresses: [GATEWAY.address], pendingUndelegations: new Map() },
    header.sessionEndBlockHeight,
  ).map((a) => (a === APP.address ? APP.publicKey : GATEWAY.publicKey));
}

export interface SignedRequests {
  header: SessionHeader;
  ring: Uint8Array[];
  /** Encoded requests, ring-signed by GATEWAY for SUPPLIER. */
  encoded: Uint8Array[];
  /** Their signable hashes, as hex: the only contents a mutated request may be accepted with. */
  signedContents: Set<string>;
}

/** Requests over `payloads`, ring-signed by GATEWAY as a gateway does (HTTP or WebSocket payloads). */
export function signedRequests(header: SessionHeader, payloads: readonly Uint8Array[]): SignedRequests {
  const ring = ringKeysFor(header);
  const encoded: Uint8Array[] = [];
  const signedContents = new Set<string>();
  for (const payload of payloads) {
    const request = signGatewayRelayRequest(native, {
      header,
      supplierOperatorAddress: SUPPLIER.address,
      payload,
      ringPublicKeys: ring,
      signerIndex: ring.indexOf(GATEWAY.publicKey),
      signerPrivateKey: GATEWAY.privateKey,
    });
    encoded.push(encodeRelayRequest(request));
    signedContents.add(bytesToHex(relayRequestSignableHash(request)));
  }
  return { header, ring, encoded, signedContents };
}

export type FieldEdit =
  | { field: 'app' | 'service' | 'session' | 'supplier'; text: string; known: boolean }
  | { field: 'start' | 'end'; value: bigint }
  | { field: 'payload'; bytes: Uint8Array }
  | { field: 'signature'; bytes: Uint8Array; fromOther: boolean; other: number };

const fieldEditArb: fc.Arbitrary<FieldEdit> = fc.oneof(
  fc.record({
    field: fc.constantFrom('app' as const, 'service' as const, 'session' as const, 'supplier' as const),
    text: fc.oneof(fc.string({ maxLength: 64 }), fc.string({ unit: 'binary', maxLength: 64 })),
    known: fc.boolean(),
  }),
  fc.record({
    field: fc.constantFrom('start' as const, 'end' as const),
    value: fc.oneof(
      fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }),
      fc.bigInt({ min: -3n, max: 30n }),
    ),
  }),
  fc.record({ field: fc.constant('payload' as const), bytes: smallBytes(200) }),
  fc.record({
    field: fc.constant('signature' as const),
    bytes: smallBytes(300),
    fromOther: fc.boolean(),
    other: fc.nat(),
  }),
);

/**
 * Well-formed requests with one or two fields changed after signing (header fields, supplier,
 * payload, or the signature itself, including another request's valid signature): they decode,
 * so they reach the admission checks and the ring signature.
 */
export function editedRequests(bases: readonly Uint8Array[]): fc.Arbitrary<Uint8Array> {
  const requests = bases.map((b) => {
    const d = decodeRelayRequest(b);
    if (!d.ok) throw new Error(`base request does not decode: ${d.reason}`);
    return d.value;
  });
  const addresses = [APP.address, GATEWAY.address, SUPPLIER.address];
  return fc.tuple(fc.nat(), fc.array(fieldEditArb, { minLength: 1, maxLength: 2 })).map(([i, edits]) => {
    const base = requests[i % requests.length]!;
    const meta = { ...base.meta!, sessionHeader: { ...base.meta!.sessionHeader! } };
    const h = meta.sessionHeader;
    let payload = base.payload;
    for (const e of edits) {
      switch (e.field) {
        case 'app':
          h.applicationAddress = e.known ? addresses[e.text.length % addresses.length]! : e.text;
          break;
        case 'service':
          h.serviceId = e.known ? 'stream' : e.text;
          break;
        case 'session':
          h.sessionId = e.text;
          break;
        case 'supplier':
          meta.supplierOperatorAddress = e.known ? addresses[e.text.length % addresses.length]! : e.text;
          break;
        case 'start':
          h.sessionStartBlockHeight = e.value;
          break;
        case 'end':
          h.sessionEndBlockHeight = e.value;
          break;
        case 'payload':
          payload = Buffer.from(e.bytes);
          break;
        case 'signature':
          meta.signature = Buffer.from(
            e.fromOther ? requests[e.other % requests.length]!.meta!.signature : e.bytes,
          );
          break;
      }
    }
    return encodeRelayRequest({ meta, payload });
  });
}

/** A few JSON-RPC POKTHTTPRequest payloads, as PATH sends them. */
export function httpPayloads(n: number): Uint8Array[] {
  return Array.from({ length: n }, (_, i) =>
    encodePoktHttpRequest({
      method: 'POST',
      url: '/',
      headers: [['Content-Type', ['application/json']]],
      body: Buffer.from(`{"jsonrpc":"2.0","id":${i},"method":"eth_blockNumber","params":[]}`),
    }),
  );
}

const DECODE_REFUSAL = {
  ok: false,
  reason: 'invalid_relay_request',
  message: 'invalid relay request: body must be a valid RelayRequest protobuf',
  httpStatus: 400,
  grpcCode: 3,
  wsCloseCode: WS_CLOSE.VALIDATION_FAILED,
};

function expectDecodeRefusal(r: RelayRefusal): void {
  const same = Object.entries(DECODE_REFUSAL).every(([k, v]) => r[k as keyof RelayRefusal] === v);
  if (!same) throw new FuzzInvariantError(`decode refusal is not the documented one: ${JSON.stringify(r)}`);
}

interface AdmitOutcome {
  verdict: Verdict;
  /** The relayer's refusal, when one of its own steps refused (decode or pre-admission). */
  refusal?: RelayRefusal;
  /** The payload of an accepted request. */
  payload?: Uint8Array;
}

/**
 * One request body in the relayer's order: strict decode, pre-admission (service, supplier key,
 * supplier registry gate, session heights), the basic checks and the ring signature; the verdict
 * is the first refusal. Throws FuzzInvariantError when a request whose signed content is not one
 * of `fx.signedContents` is accepted, or when a decoded request does not survive re-encoding.
 */
async function admitRequestBytes(
  core: RelayCore,
  fx: SignedRequests,
  prepared: ReturnType<typeof prepareRing>,
  bytes: Uint8Array,
  transport: 'http' | 'websocket',
): Promise<AdmitOutcome> {
  const decoded = core.decode(bytes);
  if (!decoded.ok) {
    expectDecodeRefusal(decoded);
    const strict = decodeRelayRequest(bytes);
    if (strict.ok && bytes.length > 0) {
      throw new FuzzInvariantError('RelayCore refused a body the strict decoder accepts');
    }
    return { verdict: rejected('PROTO_MALFORMED'), refusal: decoded };
  }
  const request = decoded.request;
  const again = decodeRelayRequest(encodeRelayRequest(request));
  if (!again.ok || !bytesEqual(encodeRelayRequest(again.value), encodeRelayRequest(request))) {
    throw new FuzzInvariantError('a decoded request does not decode to itself after re-encoding');
  }
  const pre = await core.preAdmit(request, bytes, {
    transport,
    rpcType: transport === 'http' ? 'jsonrpc' : 'websocket',
    arrivalHeight: core.heights.currentHeight,
  });
  if (!pre.ok) return { verdict: rejected(pre.reason), refusal: pre };
  const basic = relayRequestBasicProblem(request);
  if (basic !== undefined) return { verdict: rejected(basic.code) };
  const hash = relayRequestSignableHash(request);
  const v = verifyRingSignature(native, request.meta!.signature, hash, prepared);
  if (!v.ok) return { verdict: rejected(v.code) };
  if (!fx.signedContents.has(bytesToHex(hash))) {
    throw new FuzzInvariantError('accepted a request whose signed content was never signed');
  }
  return { verdict: ACCEPTED, payload: request.payload };
}

/**
 * Relay request bodies through the relayer's decode and admission: random bytes, protobuf-shaped
 * fields, valid signed requests with flips, truncations, extensions, unknown fields, huge length
 * prefixes, repeated fields and nested groups.
 */
export function relayRequestTarget(core: RelayCore, header: SessionHeader): FuzzTarget<Uint8Array> {
  const fx = signedRequests(header, httpPayloads(4));
  const prepared = prepareRing(native, fx.ring);
  return {
    name: 'relay-request',
    arbitrary: fc.oneof(
      { weight: 3, arbitrary: hostileBytes(fx.encoded) },
      { weight: 1, arbitrary: editedRequests(fx.encoded) },
    ),
    budgetMs: 1_000,
    run: async (bytes) => (await admitRequestBytes(core, fx, prepared, bytes, 'http')).verdict,
    show: (b) => hexPreview(b),
  };
}

/* ---------- ring signatures ---------- */

type ScalarValue = 'zero' | 'n' | 'plus-n' | 'max' | 'plus-one' | 'random';
type PointValue = 'off-curve' | 'prefix' | 'x-ge-p' | 'infinity' | 'other-key' | 'random';

export type SigMutation =
  | { op: 'none' }
  | { op: 'bytes'; m: ByteMutation }
  | { op: 'scalar'; index: number; value: ScalarValue; random: bigint }
  | { op: 'point'; index: number; value: PointValue; random: Uint8Array; prefix: number }
  | { op: 'ring-size'; size: 'zero' | 'minus-one' | 'plus-one' | 'max' | 'random'; random: number }
  | { op: 'trailing'; bytes: Uint8Array }
  | { op: 'swap'; a: number; b: number };

export interface RingCase {
  ring: number;
  backend: 'native' | 'noble';
  prepared: boolean;
  expected: 'same' | 'other' | 'empty' | 'subset' | 'superset' | 'reordered';
  message: 'same' | 'other' | 'short';
  mutation: SigMutation;
}

interface RingFixture {
  keys: Uint8Array[];
  message: Uint8Array;
  sig: Uint8Array;
}

const text = (s: string): Uint8Array => new TextEncoder().encode(s);

/** 33 bytes `02 || x` with x < p not on the curve (found once by search). */
function offCurvePoint(): Uint8Array {
  for (let i = 0; ; i++) {
    const p = concatBytes(Uint8Array.of(0x02), sha256(text(`off-curve ${i}`)));
    if (native.decodePoint(p) === null && bytesToBigInt(p.subarray(1)) < 0xffffffffn << 224n) return p;
  }
}

const ringSigArb = (rings: number): fc.Arbitrary<RingCase> =>
  fc.record({
    ring: fc.nat(rings - 1),
    backend: fc.constantFrom('native' as const, 'noble' as const),
    prepared: fc.boolean(),
    expected: fc.oneof(
      { weight: 6, arbitrary: fc.constant('same' as const) },
      {
        weight: 1,
        arbitrary: fc.constantFrom(
          'other' as const,
          'empty' as const,
          'subset' as const,
          'superset' as const,
          'reordered' as const,
        ),
      },
    ),
    message: fc.oneof(
      { weight: 8, arbitrary: fc.constant('same' as const) },
      { weight: 1, arbitrary: fc.constantFrom('other' as const, 'short' as const) },
    ),
    mutation: fc.oneof(
      fc.constant({ op: 'none' as const }),
      fc.record({ op: fc.constant('bytes' as const), m: byteMutationArb }),
      fc.record({
        op: fc.constant('scalar' as const),
        index: fc.nat(),
        value: fc.constantFrom<ScalarValue>('zero', 'n', 'plus-n', 'max', 'plus-one', 'random'),
        random: fc.bigInt({ min: 0n, max: (1n << 256n) - 1n }),
      }),
      fc.record({
        op: fc.constant('point' as const),
        index: fc.nat(),
        value: fc.constantFrom<PointValue>(
          'off-curve',
          'prefix',
          'x-ge-p',
          'infinity',
          'other-key',
          'random',
        ),
        random: fc.uint8Array({ minLength: 33, maxLength: 33 }),
        prefix: fc.constantFrom(0x00, 0x01, 0x04, 0x05, 0x06, 0x07, 0xff),
      }),
      fc.record({
        op: fc.constant('ring-size' as const),
        size: fc.constantFrom(
          'zero' as const,
          'minus-one' as const,
          'plus-one' as const,
          'max' as const,
          'random' as const,
        ),
        random: fc.nat(),
      }),
      fc.record({
        op: fc.constant('trailing' as const),
        bytes: fc.uint8Array({ minLength: 1, maxLength: 80 }),
      }),
      fc.record({ op: fc.constant('swap' as const), a: fc.nat(), b: fc.nat() }),
    ),
  });

/** The canonical bytes of a signature as ring-go reads it: scalars mod N, no trailing bytes. */
function canonicalSignature(sig: Uint8Array): Uint8Array | undefined {
  if (sig.length < 4) return undefined;
  const n = new DataView(sig.buffer, sig.byteOffset, sig.byteLength).getUint32(0, false);
  const needed = 69 + 65 * n;
  if (sig.length < needed) return undefined;
  const out = Uint8Array.from(sig.subarray(0, needed));
  const reduce = (off: number): void => {
    out.set(bigIntToBytes(bytesToBigInt(out.subarray(off, off + 32)) % SECP256K1_N, 32), off);
  };
  reduce(4);
  for (let i = 0; i < n; i++) reduce(69 + 65 * i);
  return out;
}

function mutateSignature(
  f: RingFixture,
  m: SigMutation,
  others: readonly Uint8Array[],
  offCurve: Uint8Array,
  otherKey: Uint8Array,
): Uint8Array {
  const sig = Uint8Array.from(f.sig);
  const n = f.keys.length;
  switch (m.op) {
    case 'none':
      return sig;
    case 'bytes':
      return applyByteMutation(sig, m.m, others);
    case 'scalar': {
      // 0 = c0, 1..n = s_i
      const k = m.index % (n + 1);
      const off = k === 0 ? 4 : 69 + 65 * (k - 1);
      const orig = bytesToBigInt(sig.subarray(off, off + 32));
      const max = (1n << 256n) - 1n;
      const v = {
        zero: 0n,
        n: SECP256K1_N,
        'plus-n': orig + SECP256K1_N <= max ? orig + SECP256K1_N : orig,
        max,
        'plus-one': (orig + 1n) & max,
        random: m.random,
      }[m.value];
      sig.set(bigIntToBytes(v, 32), off);
      return sig;
    }
    case 'point': {
      // 0 = key image, 1..n = P_i
      const k = m.index % (n + 1);
      const off = k === 0 ? 36 : 69 + 65 * (k - 1) + 32;
      const orig = sig.subarray(off, off + 33);
      const v = {
        'off-curve': offCurve,
        prefix: concatBytes(Uint8Array.of(m.prefix), orig.subarray(1)),
        'x-ge-p': concatBytes(Uint8Array.of(0x02), new Uint8Array(32).fill(0xff)),
        infinity: concatBytes(Uint8Array.of(0x02), new Uint8Array(32)),
        'other-key': otherKey,
        random: m.random,
      }[m.value];
      sig.set(v, off);
      return sig;
    }
    case 'ring-size': {
      const v = {
        zero: 0,
        'minus-one': n - 1,
        'plus-one': n + 1,
        max: 0xffffffff,
        random: m.random >>> 0,
      }[m.size];
      new DataView(sig.buffer).setUint32(0, v, false);
      return sig;
    }
    case 'trailing':
      return concatBytes(sig, m.bytes);
    case 'swap': {
      const a = m.a % n;
      const b = m.b % n;
      const ea = sig.slice(69 + 65 * a, 69 + 65 * (a + 1));
      const eb = sig.slice(69 + 65 * b, 69 + 65 * (b + 1));
      sig.set(eb, 69 + 65 * a);
      sig.set(ea, 69 + 65 * b);
      return sig;
    }
  }
}

const preparedRings = new Map<string, ReturnType<typeof prepareRing>>();

/** The ring prepared for `backend`, once per backend and ring. */
function preparedFor(backend: EcBackend, ring: readonly Uint8Array[]): ReturnType<typeof prepareRing> {
  const key = `${backend.name}/${ring.map((k) => bytesToHex(k)).join(',')}`;
  let p = preparedRings.get(key);
  if (p === undefined) {
    p = prepareRing(backend, ring);
    preparedRings.set(key, p);
  }
  return p;
}

function verifyWith(
  backend: EcBackend,
  sig: Uint8Array,
  message: Uint8Array,
  ring: readonly Uint8Array[],
  prepared: boolean,
): RingVerifyResult | { ok: false; code: 'INVALID_INPUT'; reason: string } {
  try {
    return verifyRingSignature(backend, sig, message, prepared ? preparedFor(backend, ring) : ring);
  } catch (err) {
    // The one documented throw: a message that is not a 32-byte hash (a caller's bug).
    if (err instanceof RelayMinerError && err.code === 'INVALID_INPUT' && message.length !== 32) {
      return { ok: false, code: 'INVALID_INPUT', reason: err.message };
    }
    throw err;
  }
}

/**
 * bLSAG verification of mutated signatures (non-canonical and zero scalars, points off the curve
 * or at infinity, wrong ring sizes, swapped entries, trailing bytes) against right, wrong, empty,
 * partial and reordered rings, on both EC backends. The two backends must agree on every input,
 * and a signature may be accepted only when it reads (scalars mod N, trailing bytes ignored, as
 * ring-go reads it) as the original over the original message and a ring holding its members.
 */
export function ringSignatureTarget(): FuzzTarget<RingCase> {
  const keysOf = (tag: string, n: number): { priv: Uint8Array[]; pub: Uint8Array[] } => {
    const priv = Array.from({ length: n }, (_, i) => sha256(text(`fuzz ring ${tag} ${i}`)));
    return { priv, pub: priv.map((k) => native.encodePoint(native.mulBase(bytesToBigInt(k)))) };
  };
  const fixtures: RingFixture[] = [2, 3, 4].map((n) => {
    const { priv, pub } = keysOf(`r${n}`, n);
    const message = sha256(text(`fuzz ring message ${n}`));
    return { keys: pub, message, sig: signRingSignature(native, pub, n - 1, priv[n - 1]!, message) };
  });
  const outsiders = keysOf('outsider', 4).pub;
  const offCurve = offCurvePoint();
  const sigs = fixtures.map((f) => f.sig);
  const otherMessage = sha256(text('fuzz ring other message'));
  const ringFor = (f: RingFixture, e: RingCase['expected']): Uint8Array[] => {
    switch (e) {
      case 'same':
        return f.keys;
      case 'other':
        return outsiders.slice(0, f.keys.length);
      case 'empty':
        return [];
      case 'subset':
        return f.keys.slice(1);
      case 'superset':
        return [...f.keys, ...outsiders];
      case 'reordered':
        return [...f.keys].reverse();
    }
  };
  return {
    name: 'ring-signature',
    arbitrary: ringSigArb(fixtures.length),
    budgetMs: 1_000,
    run: (c) => {
      const f = fixtures[c.ring]!;
      const sig = mutateSignature(f, c.mutation, sigs, offCurve, outsiders[0]!);
      const message =
        c.message === 'same' ? f.message : c.message === 'other' ? otherMessage : f.message.subarray(1);
      const ring = ringFor(f, c.expected);
      const first = c.backend === 'native' ? native : nobleBackend;
      const second = c.backend === 'native' ? nobleBackend : native;
      const v = verifyWith(first, sig, message, ring, c.prepared);
      const w = verifyWith(second, sig, message, ring, !c.prepared);
      if (v.ok !== w.ok || (!v.ok && !w.ok && v.code !== w.code)) {
        throw new FuzzInvariantError(
          `backends disagree: ${first.name} ${v.ok ? 'ok' : v.code}, ${second.name} ${w.ok ? 'ok' : w.code}`,
        );
      }
      if (!v.ok) return rejected(v.code);
      const canonical = canonicalSignature(sig);
      const members = new Set(ring.map((k) => bytesToHex(k)));
      const sameSig = canonical !== undefined && bytesEqual(canonical, f.sig);
      const inRing = f.keys.every((k) => members.has(bytesToHex(k)));
      if (!sameSig || message !== f.message || !inRing) {
        throw new FuzzInvariantError(
          'accepted a signature that is not the original over the original message',
        );
      }
      return ACCEPTED;
    },
    show: (c) =>
      JSON.stringify(c, (_, v: unknown) =>
        typeof v === 'bigint' ? `0x${v.toString(16)}` : v instanceof Uint8Array ? bytesToHex(v) : v,
      ),
  };
}

/* ---------- WebSocket frames ---------- */

export type WsCase =
  | { kind: 'frame'; bytes: Uint8Array; isBinary: boolean }
  | { kind: 'close'; code: number; reason: string; from: 'gateway' | 'backend' }
  | { kind: 'handshake'; headers: Record<string, string>; path: string };

/** WebSocket frame payloads a gateway might send: JSON-RPC text, binary, invalid UTF-8. */
export function wsPayloads(): Uint8Array[] {
  return [
    Buffer.from('{"jsonrpc":"2.0","id":1,"method":"eth_subscribe","params":["newHeads"]}'),
    Buffer.from('  [{"jsonrpc":"2.0","id":2,"method":"eth_blockNumber"}]'),
    Uint8Array.of(0x00, 0xff, 0xfe, 0x7b, 0x80),
    Buffer.from('{"bad utf8":"\xc3\x28"}', 'latin1'),
  ];
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const isWellFormed = (s: string): boolean => !LONE_SURROGATE.test(s);

/** Relay codes a WebSocket refusal may close with (relayer.md §6.3). */
const WS_REFUSAL_CODES = new Set<number>([
  WS_CLOSE.GOING_AWAY,
  WS_CLOSE.INTERNAL_ERROR,
  WS_CLOSE.VALIDATION_FAILED,
  WS_CLOSE.STAKE_EXCEEDED,
]);

/**
 * The bridge's handling of one gateway frame, as `processGatewayFrame` runs it on a connection for
 * service `anvil` and SUPPLIER: strict decode (a refusal closes with 4001), the connection's
 * service and supplier, pre-admission (each refusal carries a documented close code) and the ring
 * signature; then the frame type the payload goes to the backend with (a text frame must never
 * carry non-UTF-8). Close frames from either peer map to a sendable code and a reason of at most
 * 123 bytes; relayer codes 4000–4003 from a backend never pass through.
 */
export function websocketFrameTarget(core: RelayCore, header: SessionHeader): FuzzTarget<WsCase> {
  const fx = signedRequests(header, wsPayloads());
  const prepared = prepareRing(native, fx.ring);
  const frame = fc.record({
    kind: fc.constant('frame' as const),
    bytes: fc.oneof(
      { weight: 3, arbitrary: hostileBytes(fx.encoded) },
      { weight: 1, arbitrary: editedRequests(fx.encoded) },
    ),
    isBinary: fc.boolean(),
  });
  const close = fc.record({
    kind: fc.constant('close' as const),
    code: fc.oneof(
      fc.integer({ min: 0, max: 70_000 }),
      fc.integer({ min: 999, max: 1016 }),
      fc.integer({ min: 3990, max: 4010 }),
    ),
    reason: fc.oneof(
      fc.string({ unit: 'grapheme', maxLength: 80 }),
      fc.string({ unit: 'binary', maxLength: 200 }),
    ),
    from: fc.constantFrom('gateway' as const, 'backend' as const),
  });
  const handshake = fc.record({
    kind: fc.constant('handshake' as const),
    headers: fc.dictionary(
      fc.constantFrom('target-service-id', 'pocket-service-id', 'x-forwarded-host', 'rpc-type'),
      fc.string({ unit: 'binary', maxLength: 40 }),
    ),
    path: fc.string({ unit: 'binary', maxLength: 60 }),
  });
  return {
    name: 'websocket-frame',
    arbitrary: fc.oneof(
      { weight: 8, arbitrary: frame },
      { weight: 1, arbitrary: close },
      { weight: 1, arbitrary: handshake },
    ),
    budgetMs: 1_000,
    run: async (c) => {
      if (c.kind === 'handshake') {
        const service = resolveServiceId({ headers: c.headers, path: c.path });
        const fromHeader = ['target-service-id', 'pocket-service-id', 'x-forwarded-host']
          .map((n) => (c.headers[n] ?? '').trim())
          .find((v) => v !== '');
        const expected = fromHeader ?? c.path.split('/').find((seg) => seg !== '') ?? '';
        if (service !== expected) {
          throw new FuzzInvariantError(
            `service ${JSON.stringify(service)}, expected ${JSON.stringify(expected)}`,
          );
        }
        return rejected(service === '' ? 'no_service' : 'service_resolved');
      }
      if (c.kind === 'close') {
        const out =
          c.from === 'gateway' ? backendCloseFor(c.code, c.reason) : gatewayCloseForBackend(c.code, c.reason);
        if (!isSendableCloseCode(out.code)) throw new FuzzInvariantError(`unsendable close code ${out.code}`);
        if (Buffer.byteLength(out.reason) > 123) throw new FuzzInvariantError('close reason over 123 bytes');
        if (isWellFormed(c.reason) && !isWellFormed(out.reason)) {
          throw new FuzzInvariantError('close reason cut inside a character');
        }
        if (c.from === 'backend' && out.code >= 4000 && out.code <= 4003) {
          throw new FuzzInvariantError(`backend close code ${c.code} passed through as ${out.code}`);
        }
        return rejected(`close_${out.code === c.code ? 'kept' : 'mapped'}`);
      }
      const decoded = core.decode(c.bytes);
      if (decoded.ok) {
        const m = decoded.request.meta;
        if ((m?.sessionHeader?.serviceId ?? '') !== header.serviceId) return rejected('close_4001_service');
        if ((m?.supplierOperatorAddress ?? '') !== SUPPLIER.address) return rejected('close_4001_supplier');
      }
      const r = await admitRequestBytes(core, fx, prepared, c.bytes, 'websocket');
      if (!r.verdict.accepted) {
        // The bridge closes a frame that does not decode with 4001 whatever the decode refusal says.
        const code = !decoded.ok
          ? WS_CLOSE.VALIDATION_FAILED
          : (r.refusal?.wsCloseCode ?? WS_CLOSE.VALIDATION_FAILED);
        if (!WS_REFUSAL_CODES.has(code)) {
          throw new FuzzInvariantError(`refusal ${r.verdict.code} closes with undocumented code ${code}`);
        }
        return rejected(`close_${code}_${r.verdict.code}`);
      }
      const payload = r.payload!;
      if (!backendFrameIsBinary(c.isBinary, payload) && !isUtf8(payload)) {
        throw new FuzzInvariantError('a payload that is not UTF-8 would go to the backend as a text frame');
      }
      return ACCEPTED;
    },
    show: (c) =>
      c.kind === 'frame' ? `frame binary=${c.isBinary} ${hexPreview(c.bytes)}` : JSON.stringify(c),
  };
}

/* ---------- streamed answers ---------- */

export interface StreamCase {
  lines: string[];
  /** Line that gets `||POKT_STREAM||` written into it (a body the protocol cannot carry). */
  delimiterAt: number | null;
  trailingNewline: boolean;
  maxLineBytes: number;
  bodyCuts: number[];
  batchSizes: number[];
  wireCuts: number[];
}

const streamLine = fc.oneof(
  { weight: 4, arbitrary: fc.json({ maxDepth: 2 }).map((j) => j.replace(/\n/g, ' ')) },
  { weight: 3, arbitrary: fc.string({ unit: 'grapheme', maxLength: 120 }).map((s) => s.replace(/\n/g, '')) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 60 }).map((s) => s.replace(/\n/g, '')) },
  { weight: 1, arbitrary: fc.constantFrom('', 'data: ', ': keep-alive', 'event: x') },
);

/** Chunks of `bytes` cut at the given offsets (mod length), as a backend or a socket delivers them. */
export function chunked(bytes: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  if (bytes.length === 0) return [];
  const at = [...new Set(cuts.map((c) => c % bytes.length))].filter((c) => c > 0).sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const c of [...at, bytes.length]) {
    out.push(bytes.subarray(prev, c));
    prev = c;
  }
  return out;
}

async function* asyncChunks(chunks: readonly Uint8Array[]): AsyncGenerator<Uint8Array> {
  for (const c of chunks) yield await Promise.resolve(c);
}

/**
 * A streamed answer end to end, with random chunk boundaries on both sides: the backend body is cut
 * into lines by the relayer's `splitLines` (nothing lost, duplicated or reordered; no line over
 * the cap; a newline only at a line's end), the lines are grouped into batches, each batch signed
 * by the supplier key and written with `||POKT_STREAM||` after it, and the gateway side reassembles
 * the bytes with `splitStreamBatches` and verifies each batch. Every batch must verify and the
 * bodies must concatenate to the backend body — unless a line itself contains the delimiter, which
 * the protocol cannot carry: then a batch must be refused with a typed response code.
 */
export function streamBatchesTarget(header: SessionHeader): FuzzTarget<StreamCase> {
  const signer = new RelaySigner({ backend: native, log: pino({ level: 'silent' }) }, [SUPPLIER.privateKey]);
  const delimiter = Buffer.from(POKT_STREAM_DELIMITER);
  return {
    name: 'stream-batches',
    arbitrary: fc.record({
      lines: fc.array(streamLine, { maxLength: 40 }),
      delimiterAt: fc.oneof({ weight: 9, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.nat() }),
      trailingNewline: fc.boolean(),
      maxLineBytes: fc.constantFrom(8, 33, 100, 1024, STREAM_MAX_LINE_BYTES),
      bodyCuts: fc.array(fc.nat(), { maxLength: 12 }),
      batchSizes: fc.array(fc.integer({ min: 1, max: 100 }), { maxLength: 12 }),
      wireCuts: fc.array(fc.nat(), { maxLength: 16 }),
    }),
    budgetMs: 2_000,
    run: async (c) => {
      const withDelimiter = c.lines.map((l, i) =>
        c.delimiterAt !== null && i === c.delimiterAt % c.lines.length ? `${l}||POKT_STREAM||${l}` : l,
      );
      const body = Buffer.from(
        withDelimiter.join('\n') + (c.trailingNewline && c.lines.length > 0 ? '\n' : ''),
      );
      const lines: Buffer[] = [];
      for await (const line of splitLines(asyncChunks(chunked(body, c.bodyCuts)), c.maxLineBytes))
        lines.push(line);
      if (!Buffer.concat(lines).equals(body))
        throw new FuzzInvariantError('splitLines lost or reordered bytes');
      lines.forEach((l, i) => {
        const nl = l.indexOf(0x0a);
        if (l.length === 0 || l.length > c.maxLineBytes)
          throw new FuzzInvariantError(`line ${i} has ${l.length} bytes`);
        if (nl !== -1 && nl !== l.length - 1) throw new FuzzInvariantError(`line ${i} has a newline inside`);
        if (i < lines.length - 1 && nl === -1 && l.length !== c.maxLineBytes) {
          throw new FuzzInvariantError(`line ${i} ends early without a newline`);
        }
      });
      // Group into batches and sign each as the relayer does.
      const batches: Buffer[] = [];
      for (let i = 0, k = 0; i < lines.length; k++) {
        const n = c.batchSizes.length === 0 ? 100 : c.batchSizes[k % c.batchSizes.length]!;
        batches.push(Buffer.concat(lines.slice(i, i + n)));
        i += n;
      }
      const wire: Buffer[] = [];
      for (const b of batches) {
        const unsigned: RelayResponse = {
          meta: { sessionHeader: header, supplierOperatorSignature: Buffer.alloc(0) },
          payload: Buffer.from(encodePoktHttpResponse({ statusCode: 200, headers: [], body: b })),
          payloadHash: Buffer.alloc(0),
          relayMinerError: undefined,
        };
        const signed = signer.sign(unsigned, SUPPLIER.address);
        if (!signed.ok) throw new FuzzInvariantError(`batch not signed: ${signed.code}`);
        wire.push(Buffer.from(encodeRelayResponse(signed.response)), delimiter);
      }
      // The gateway reads the stream in arbitrary pieces.
      let pending: Uint8Array = new Uint8Array(0);
      const received: Uint8Array[] = [];
      for (const piece of chunked(Buffer.concat(wire), c.wireCuts)) {
        const { batches: got, rest } = splitStreamBatches(concatBytes(pending, piece));
        received.push(...got.map((g) => Uint8Array.from(g)));
        pending = Uint8Array.from(rest);
      }
      // A batch whose body holds the delimiter is cut there by every reader (upstream's format).
      const carriesDelimiter = batches.some((b) => b.includes(delimiter));
      const bodies: Uint8Array[] = [];
      for (const r of received) {
        const v = verifyHttpRelayResponse(native, r, SUPPLIER.publicKey, header);
        if (!v.ok) {
          if (carriesDelimiter) return rejected(v.code);
          throw new FuzzInvariantError(`batch refused: ${v.code} ${v.reason}`);
        }
        if (v.status !== 200) throw new FuzzInvariantError(`batch status ${v.status}`);
        bodies.push(v.body);
      }
      if (carriesDelimiter) {
        throw new FuzzInvariantError('a batch carrying the delimiter went through unnoticed');
      }
      if (pending.length !== 0)
        throw new FuzzInvariantError(`${pending.length} bytes left after the last delimiter`);
      if (received.length !== batches.length) {
        throw new FuzzInvariantError(`${batches.length} batches sent, ${received.length} received`);
      }
      if (!Buffer.concat(bodies).equals(body))
        throw new FuzzInvariantError('reassembled body differs from the backend body');
      return ACCEPTED;
    },
    show: (c) => JSON.stringify(c),
  };
}

/* ---------- YAML documents: config and genesis files ---------- */

type Path = (string | number)[];

export type DocMutation =
  | { op: 'delete' }
  | { op: 'set'; value: unknown }
  | { op: 'deep'; depth: number; asList: boolean }
  | { op: 'unknown-key'; key: string };

export type TextMutation =
  | { op: 'delete-line'; at: number }
  | { op: 'duplicate-line'; at: number }
  | { op: 'indent'; at: number; by: number }
  | { op: 'insert'; at: number; text: string }
  | { op: 'truncate'; at: number };

export type DocCase =
  | { kind: 'object'; path: number; mutations: DocMutation[] }
  | { kind: 'text'; mutations: TextMutation[] }
  | { kind: 'random'; text: string };

const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(
    0,
    -1,
    1e308,
    -1e308,
    Number.MAX_SAFE_INTEGER + 2,
    2 ** 64,
    0.5,
    true,
    false,
    null,
    '',
    [],
    {},
  ),
  fc.integer(),
  fc.double(),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom('1s', '-5m', '99999999999h', 'redis://', 'http://[::1', '0x10', '1e400', '\u202e', '💥'),
  fc.array(fc.oneof(fc.integer(), fc.string({ maxLength: 8 })), { maxLength: 4 }),
  fc.dictionary(fc.string({ maxLength: 8 }), fc.oneof(fc.integer(), fc.string({ maxLength: 8 })), {
    maxKeys: 3,
  }),
);

const docMutation: fc.Arbitrary<DocMutation> = fc.oneof(
  { weight: 2, arbitrary: fc.constant({ op: 'delete' as const }) },
  { weight: 5, arbitrary: fc.record({ op: fc.constant('set' as const), value: hostileValue }) },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('deep' as const),
      depth: fc.integer({ min: 2, max: 200 }),
      asList: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('unknown-key' as const),
      key: fc.string({ minLength: 1, maxLength: 12 }),
    }),
  },
);

const textMutation: fc.Arbitrary<TextMutation> = fc.oneof(
  fc.record({ op: fc.constant('delete-line' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('duplicate-line' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('indent' as const), at: fc.nat(), by: fc.integer({ min: -4, max: 4 }) }),
  fc.record({
    op: fc.constant('insert' as const),
    at: fc.nat(),
    text: fc.oneof(
      fc.constantFrom(
        ': ',
        '- ',
        '{',
        '[',
        '&a ',
        '*a',
        '!!binary ',
        '<<: *a',
        '"',
        "'",
        '#',
        '\t',
        '---\n',
        '? ',
        '|',
      ),
      fc.string({ unit: 'grapheme', maxLength: 12 }),
    ),
  }),
  fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
);

const docCase = (paths: number): fc.Arbitrary<DocCase> =>
  fc.oneof(
    {
      weight: 5,
      arbitrary: fc.record({
        kind: fc.constant('object' as const),
        path: fc.nat(paths - 1),
        mutations: fc.array(docMutation, { minLength: 1, maxLength: 3 }),
      }),
    },
    {
      weight: 3,
      arbitrary: fc.record({
        kind: fc.constant('text' as const),
        mutations: fc.array(textMutation, { minLength: 1, maxLength: 4 }),
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('random' as const),
        text: fc.oneof(
          fc.string({ unit: 'binary', maxLength: 300 }),
          fc.json({ maxDepth: 4 }).map((j) => j),
        ),
      }),
    },
  );

/** Every path of a parsed document below the root (so the document stays a mapping). */
function pathsOf(doc: unknown): Path[] {
  const out: Path[] = [];
  const stack: [unknown, Path][] = [[doc, []]];
  for (let top = stack.pop(); top !== undefined; top = stack.pop()) {
    const [v, p] = top;
    if (p.length > 0) out.push(p);
    if (Array.isArray(v)) v.forEach((x, i) => stack.push([x, [...p, i]]));
    else if (v !== null && typeof v === 'object' && !(v instanceof Date)) {
      for (const [k, x] of Object.entries(v)) stack.push([x, [...p, k]]);
    }
  }
  return out;
}

function nested(depth: number, asList: boolean): unknown {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = asList ? [v] : { k: v };
  return v;
}

/** Applies document mutations to a copy of `doc` at `path`. */
function mutateDoc(doc: unknown, path: Path, mutations: readonly DocMutation[]): unknown {
  const copy = structuredClone(doc);
  let parent = copy as Record<string | number, unknown>;
  for (const seg of path.slice(0, -1)) parent = parent[seg] as Record<string | number, unknown>;
  const last = path[path.length - 1]!;
  for (const m of mutations) {
    switch (m.op) {
      case 'delete':
        if (Array.isArray(parent)) parent.splice(Number(last), 1);
        else delete parent[last];
        break;
      case 'set':
        parent[last] = m.value;
        break;
      case 'deep':
        parent[last] = nested(m.depth, m.asList);
        break;
      case 'unknown-key':
        if (!Array.isArray(parent)) parent[`${m.key}_unknown`] = 1;
        break;
    }
  }
  return copy;
}

function mutateText(source: string, mutations: readonly TextMutation[]): string {
  let t = source;
  for (const m of mutations) {
    const lines = t.split('\n');
    const i = lines.length === 0 ? 0 : ('at' in m ? m.at : 0) % lines.length;
    switch (m.op) {
      case 'delete-line':
        lines.splice(i, 1);
        t = lines.join('\n');
        break;
      case 'duplicate-line':
        lines.splice(i, 0, lines[i] ?? '');
        t = lines.join('\n');
        break;
      case 'indent': {
        const l = lines[i] ?? '';
        lines[i] =
          m.by >= 0 ? ' '.repeat(m.by) + l : l.slice(Math.min(-m.by, l.length - l.trimStart().length));
        t = lines.join('\n');
        break;
      }
      case 'insert': {
        const at = t.length === 0 ? 0 : m.at % (t.length + 1);
        t = t.slice(0, at) + m.text + t.slice(at);
        break;
      }
      case 'truncate':
        t = t.slice(0, t.length === 0 ? 0 : m.at % t.length);
        break;
    }
  }
  return t;
}

interface Issue {
  path: string;
  message: string;
}

/** Every issue names a path (`''` = the document itself) and says what is wrong. */
function checkIssues(issues: readonly Issue[], what: string, mustName: boolean): void {
  if (issues.length === 0) throw new FuzzInvariantError(`${what} refused without any issue`);
  for (const i of issues) {
    if (typeof i.path !== 'string' || typeof i.message !== 'string' || i.message.trim() === '') {
      throw new FuzzInvariantError(`${what} issue without path or message: ${JSON.stringify(i)}`);
    }
  }
  if (mustName && issues.every((i) => i.path === '' || i.path === '(root)' || i.path === '(file)')) {
    throw new FuzzInvariantError(`${what} refused a mutated key without naming any key`);
  }
}

/** True when a `deep` mutation at `path` nests past MAX_YAML_NESTING (refused for the whole document). */
function tooDeep(path: Path, mutations: readonly DocMutation[]): boolean {
  return mutations.some((m) => m.op === 'deep' && path.length + m.depth + 1 > MAX_YAML_NESTING);
}

function docText(doc: unknown): string {
  return stringifyYaml(doc, { aliasDuplicateObjects: false });
}

/**
 * Relayer and miner config files through `validateRelayerConfig` / `validateMinerConfig` (the
 * function the services and `validate` run at start-up): the example files with values swapped,
 * removed, replaced by huge numbers, unicode, deep nesting or unknown keys, text-level edits, and
 * random text. Only ConfigError (CONFIG_INVALID) may be thrown; each issue has a dotted path, and
 * a document whose mapping survived the mutation is refused naming a key.
 */
export function configTarget(examples: {
  relayer: string;
  miner: string;
}): FuzzTarget<{ which: 'relayer' | 'miner'; doc: DocCase }> {
  const sources = {
    relayer: { text: examples.relayer, validate: validateRelayerConfig },
    miner: { text: examples.miner, validate: validateMinerConfig },
  };
  const parsed = {
    relayer: parseYamlText(examples.relayer) as unknown,
    miner: parseYamlText(examples.miner) as unknown,
  };
  const paths = { relayer: pathsOf(parsed.relayer), miner: pathsOf(parsed.miner) };
  const most = Math.max(paths.relayer.length, paths.miner.length);
  const render = (c: { which: 'relayer' | 'miner'; doc: DocCase }): string => {
    const d = c.doc;
    if (d.kind === 'random') return d.text;
    if (d.kind === 'text') return mutateText(sources[c.which].text, d.mutations);
    const ps = paths[c.which];
    return docText(mutateDoc(parsed[c.which], ps[d.path % ps.length]!, d.mutations));
  };
  return {
    name: 'config',
    arbitrary: fc.record({
      which: fc.constantFrom('relayer' as const, 'miner' as const),
      doc: docCase(most),
    }),
    budgetMs: 1_000,
    run: (c) => {
      const yamlText = render(c);
      try {
        sources[c.which].validate(yamlText, 'fuzz.yaml');
        return ACCEPTED;
      } catch (err) {
        if (!(err instanceof ConfigError) || err.code !== 'CONFIG_INVALID') throw err;
        const d = c.doc;
        const deep =
          d.kind === 'object' && tooDeep(paths[c.which][d.path % paths[c.which].length]!, d.mutations);
        checkIssues(err.issues, `${c.which} config`, d.kind === 'object' && !deep);
        if (!err.message.startsWith('fuzz.yaml: '))
          throw new FuzzInvariantError('config error does not name its source');
        return rejected(err.code);
      }
    },
    show: (c) => `${c.which}: ${JSON.stringify(render(c).slice(0, 2_000))}`,
  };
}

/**
 * Genesis files through `loadGenesisFile` (YAML text from disk) and, for mutated documents, also
 * `parseGenesis` on the parsed value: only GenesisInvalidError (LOCALNET_GENESIS_INVALID) may be
 * thrown, with every issue naming its path.
 */
export function genesisTarget(sample: string, dir: string): FuzzTarget<DocCase> {
  const parsed = parseYamlText(sample, { intAsBigInt: true }) as unknown;
  const paths = pathsOf(parsed);
  const file = join(dir, 'genesis.yaml');
  const render = (d: DocCase): { text: string; doc?: unknown } => {
    if (d.kind === 'random') return { text: d.text };
    if (d.kind === 'text') return { text: mutateText(sample, d.mutations) };
    const doc = mutateDoc(parsed, paths[d.path % paths.length]!, d.mutations);
    return { text: docText(doc), doc };
  };
  const judge = (load: () => unknown, what: string, mustName: boolean): Verdict => {
    try {
      load();
      return ACCEPTED;
    } catch (err) {
      if (!(err instanceof GenesisInvalidError) || err.code !== 'LOCALNET_GENESIS_INVALID') throw err;
      checkIssues(err.issues, what, mustName);
      return rejected(err.code);
    }
  };
  return {
    name: 'genesis',
    arbitrary: docCase(paths.length),
    budgetMs: 1_000,
    run: (d) => {
      const { text: yamlText, doc } = render(d);
      writeFileSync(file, yamlText);
      const fromFile = judge(() => loadGenesisFile(file), 'genesis file', false);
      if (doc === undefined) return fromFile;
      // The value keeps JS numbers where the file reads bigints, so the two verdicts may differ.
      const deep = d.kind === 'object' && tooDeep(paths[d.path % paths.length]!, d.mutations);
      judge(() => parseGenesis(doc, 'fuzz'), 'genesis value', !deep);
      return fromFile;
    },
    show: (d) => JSON.stringify(render(d).text.slice(0, 2_000)),
  };
}
