/**
 * `pocket-relay-miner relay`: a load / test client that sends relays the way PATH does (session
 * from the node, ring-signed as a delegated gateway or the application itself, PATH's headers,
 * retries and hedging) and verifies every answer's supplier signature.
 *
 *   pocket-relay-miner relay --node http://127.0.0.1:26657 --app pokt1… --gateway-key-file gw.hex \
 *     --service anvil --supplier pokt1… --url http://127.0.0.1:8545 [--rpc-type jsonrpc] \
 *     [--load-test --count 1000 --concurrency 16 --rps 200 --duration 30] [--json]
 *
 * Exit codes: 0 every relay succeeded, 1 some relay failed, 2 bad input, 3 the node could not
 * answer (session, ring or supplier key lookup).
 */
import type { Command } from 'commander';
import pino from 'pino';
import { ChainQueryClient } from '../../chain/index.js';
import { isValidAddress } from '../../protocol/index.js';
import { selectBackend } from '../../rings/index.js';
import {
  RelayClient,
  createTransport,
  healthCheckPayload,
  runSubscription,
  type RelayOutcome,
  type RelayPayloadSpec,
} from './client.js';
import { runLoad, summarize, type LoadSummary } from './load.js';
import {
  EXIT,
  RelayClientError,
  SessionResolver,
  inputError,
  parsePublicKeyHex,
  readPrivateKeyFile,
  type SigningContext,
} from './session.js';
import { RPC_TYPES, isRpcType, type RpcType } from './transports/types.js';
import type { WebSocketTransport } from './transports/websocket.js';

/** Options as the command line gives them (every value a string until validated). */
export interface RelayCliOptions {
  node?: string;
  app?: string;
  gatewayKeyFile?: string;
  appKeyFile?: string;
  service?: string;
  supplier?: string;
  supplierPubkey?: string;
  url?: string;
  rpcType?: string;
  method?: string;
  path?: string;
  data?: string;
  dataHex?: string;
  header?: string[];
  timeoutMs?: string;
  retries?: string;
  retryWithinMs?: string;
  hedgeMs?: string;
  healthCheck?: boolean;
  subscribe?: boolean;
  pushes?: string;
  loadTest?: boolean;
  count?: string;
  concurrency?: string;
  rps?: string;
  duration?: string;
  json?: boolean;
}

export interface RelayIo {
  out: (text: string) => void;
  err: (text: string) => void;
}

export type RelayMode = 'single' | 'health_check' | 'subscribe' | 'load_test';

/** The `--json` document. */
export interface RelayReport {
  mode: RelayMode;
  rpc_type: RpcType;
  url: string;
  service: string;
  application: string;
  supplier: string;
  signer: string;
  session: { id: string; start_height: number; end_height: number };
  summary: LoadSummary;
  /** Single and health-check relays: the backend's status and body (UTF-8) when it succeeded. */
  response?: { status: number; body: string };
  /** Single and health-check relays that failed: why. */
  error?: { reason: string; message: string };
  subscription_id?: string;
}

interface RelayConfig {
  node: string;
  app: string;
  keyFile: { path: string; role: 'app' | 'gateway' };
  service: string;
  supplier: string;
  supplierPubkey?: Uint8Array;
  url: string;
  rpcType: RpcType;
  payload: RelayPayloadSpec;
  timeoutMs: number;
  retries: number;
  retryWithinMs: number;
  hedgeMs: number;
  mode: RelayMode;
  pushes: number;
  count?: number;
  concurrency: number;
  rps: number;
  durationMs?: number;
}

function required(v: string | undefined, flag: string): string {
  if (v === undefined || v.trim() === '') throw inputError(`${flag} is required`);
  return v.trim();
}

function integer(
  v: string | undefined,
  flag: string,
  def: number | undefined,
  min: number,
): number | undefined {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw inputError(`${flag}: expected an integer ≥ ${min}, got '${v}'`);
  return n;
}

function positiveNumber(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw inputError(`${flag}: expected a number > 0, got '${v}'`);
  return n;
}

function address(v: string | undefined, flag: string): string {
  const a = required(v, flag);
  if (!isValidAddress(a)) throw inputError(`${flag}: '${a}' is not a pokt bech32 address`);
  return a;
}

function url(v: string | undefined, flag: string, protocols: readonly string[]): string {
  const u = required(v, flag);
  let parsed: URL;
  try {
    parsed = new URL(u);
  } catch {
    throw inputError(`${flag}: '${u}' is not a URL`);
  }
  if (!protocols.includes(parsed.protocol)) {
    throw inputError(`${flag}: '${u}' must use ${protocols.map((p) => p.replace(':', '://')).join(' or ')}`);
  }
  return u;
}

const DEFAULT_SUBSCRIBE = '{"jsonrpc":"2.0","id":1,"method":"eth_subscribe","params":["newHeads"]}';

/** Validates the command-line options; throws RelayClientError (exit 2) on bad input. */
export function parseRelayOptions(o: RelayCliOptions): RelayConfig {
  const rpcTypeText = (o.rpcType ?? 'jsonrpc').trim().toLowerCase();
  if (!isRpcType(rpcTypeText)) {
    throw inputError(`--rpc-type: unknown RPC type '${o.rpcType}'; expected one of ${RPC_TYPES.join(', ')}`);
  }
  const rpcType = rpcTypeText;
  const modes = [o.healthCheck === true, o.subscribe === true, o.loadTest === true].filter(Boolean).length;
  if (modes > 1) throw inputError('--health-check, --subscribe and --load-test exclude each other');
  if (o.subscribe === true && rpcType !== 'websocket')
    throw inputError('--subscribe needs --rpc-type websocket');
  const mode: RelayMode =
    o.healthCheck === true
      ? 'health_check'
      : o.subscribe === true
        ? 'subscribe'
        : o.loadTest === true
          ? 'load_test'
          : 'single';
  if ((o.gatewayKeyFile === undefined) === (o.appKeyFile === undefined)) {
    throw inputError(
      'give exactly one of --gateway-key-file (sign as a delegated gateway) and --app-key-file (sign as the application)',
    );
  }
  const keyFile =
    o.gatewayKeyFile !== undefined
      ? { path: o.gatewayKeyFile, role: 'gateway' as const }
      : { path: o.appKeyFile!, role: 'app' as const };
  if (o.data !== undefined && o.dataHex !== undefined)
    throw inputError('--data and --data-hex exclude each other');
  let body: Uint8Array | undefined;
  if (o.data !== undefined) body = Buffer.from(o.data, 'utf8');
  if (o.dataHex !== undefined) {
    const hex = o.dataHex.trim().replace(/^0x/i, '');
    if (!/^([0-9a-fA-F]{2})*$/.test(hex)) throw inputError('--data-hex: not an even-length hex string');
    body = Buffer.from(hex, 'hex');
  }
  const headers: Record<string, string> = {};
  for (const h of o.header ?? []) {
    const i = h.indexOf(':');
    if (i <= 0) throw inputError(`--header: expected 'Name: value', got '${h}'`);
    headers[h.slice(0, i).trim()] = h.slice(i + 1).trim();
  }
  const defaults = healthCheckPayload(rpcType);
  if (mode === 'subscribe' && body === undefined) body = Buffer.from(DEFAULT_SUBSCRIBE);
  if ((rpcType === 'grpc' || rpcType === 'grpc-web') && mode !== 'health_check' && o.path === undefined) {
    throw inputError(
      `--path: the gRPC method to call is required for --rpc-type ${rpcType} (e.g. /pkg.Service/Method)`,
    );
  }
  const payload: RelayPayloadSpec = {
    method: (o.method ?? defaults.method).toUpperCase(),
    path: o.path ?? defaults.path,
    body: body ?? defaults.body,
    headers,
  };
  const count = integer(o.count, '--count', undefined, 1);
  const durationS = positiveNumber(o.duration, '--duration');
  if (mode === 'load_test' && count === undefined && durationS === undefined) {
    throw inputError('--load-test needs --count or --duration');
  }
  if (mode !== 'load_test' && (count !== undefined || durationS !== undefined || o.rps !== undefined)) {
    throw inputError('--count, --duration and --rps need --load-test');
  }
  const protocols = rpcType === 'websocket' ? ['ws:', 'wss:', 'http:', 'https:'] : ['http:', 'https:'];
  return {
    node: url(o.node, '--node', ['http:', 'https:', 'tcp:']).replace(/^tcp:/, 'http:'),
    app: address(o.app, '--app'),
    keyFile,
    service: required(o.service, '--service'),
    supplier: address(o.supplier, '--supplier'),
    supplierPubkey: o.supplierPubkey !== undefined ? parsePublicKeyHex(o.supplierPubkey) : undefined,
    url: url(o.url, '--url', protocols),
    rpcType,
    payload,
    timeoutMs: integer(o.timeoutMs, '--timeout-ms', 10_000, 1)!,
    retries: integer(o.retries, '--retries', 1, 0)!,
    retryWithinMs: integer(o.retryWithinMs, '--retry-within-ms', 500, 0)!,
    hedgeMs: integer(o.hedgeMs, '--hedge-ms', 0, 0)!,
    mode,
    pushes: integer(o.pushes, '--pushes', 3, 0)!,
    count,
    concurrency: integer(o.concurrency, '--concurrency', mode === 'load_test' ? 8 : 1, 1)!,
    rps: positiveNumber(o.rps, '--rps') ?? 0,
    durationMs: durationS !== undefined ? durationS * 1000 : undefined,
  };
}

function bodyText(b: Uint8Array | undefined): string {
  return Buffer.from(b ?? new Uint8Array()).toString('utf8');
}

function textReport(r: RelayReport, io: RelayIo, first: RelayOutcome | undefined): void {
  const s = r.summary;
  if (r.mode === 'single' || r.mode === 'health_check') {
    const what = r.mode === 'health_check' ? 'health check' : 'relay';
    if (first?.ok === true) {
      io.out(
        `${what} ok: status ${first.status}, ${s.latency_ms.max} ms, ${s.attempts} attempt(s), ` +
          `${s.verified_responses} verified response(s)`,
      );
      io.out(bodyText(first.body));
    } else {
      io.err(`${what} failed: ${first?.reason ?? 'unknown'}: ${first?.message ?? ''}`);
    }
    return;
  }
  if (r.mode === 'subscribe') {
    io.out(`subscription ${r.subscription_id ?? '(none)'}: ${Math.max(0, s.success - 1)} push(es) verified`);
  }
  io.out(
    `relays: ${s.total} sent, ${s.success} ok, ${s.failed} failed (${s.success_rate_pct.toFixed(2)}% success) ` +
      `in ${Math.round(s.duration_ms)} ms, ${s.rps} relays/s`,
  );
  io.out(
    `latency ms: p50 ${s.latency_ms.p50}  p95 ${s.latency_ms.p95}  p99 ${s.latency_ms.p99}  ` +
      `(min ${s.latency_ms.min}, mean ${s.latency_ms.mean}, max ${s.latency_ms.max})`,
  );
  const reasons = Object.entries(s.failures).sort((a, b) => b[1] - a[1]);
  if (reasons.length > 0) io.out(`failures: ${reasons.map(([k, v]) => `${k} ${v}`).join(', ')}`);
}

/** Runs the command; returns the exit code. Never throws. */
export async function runRelay(opts: RelayCliOptions, io: RelayIo): Promise<number> {
  const fail = (err: RelayClientError): number => {
    io.err(`relay: ${err.message}`);
    if (opts.json === true) io.out(JSON.stringify({ error: err.message, exit_code: err.exitCode }));
    return err.exitCode;
  };
  let cfg: RelayConfig;
  let key: Uint8Array;
  try {
    cfg = parseRelayOptions(opts);
    key = readPrivateKeyFile(
      cfg.keyFile.path,
      cfg.keyFile.role === 'app' ? '--app-key-file' : '--gateway-key-file',
    );
  } catch (err) {
    if (err instanceof RelayClientError) return fail(err);
    throw err;
  }
  const backend = selectBackend('auto');
  const chain = new ChainQueryClient(
    { log: pino({ level: 'silent' }) },
    { query_node_rpc_url: cfg.node, query_timeout_ms: Math.min(cfg.timeoutMs, 5_000), max_retries: 1 },
  );
  const transport = createTransport({ backend, rpcType: cfg.rpcType, url: cfg.url });
  try {
    const resolver = new SessionResolver({
      chain,
      backend,
      appAddress: cfg.app,
      serviceId: cfg.service,
      supplierAddress: cfg.supplier,
      supplierPublicKey: cfg.supplierPubkey,
      signerPrivateKey: key,
      signerRole: cfg.keyFile.role,
    });
    let ctx: SigningContext;
    try {
      ctx = await resolver.current();
    } catch (err) {
      if (err instanceof RelayClientError) {
        if (err.exitCode === EXIT.CHAIN) {
          return fail(new RelayClientError(`node ${cfg.node}: ${err.message}`, EXIT.CHAIN, { cause: err }));
        }
        return fail(err);
      }
      throw err;
    }
    let outcomes: RelayOutcome[];
    let durationMs: number;
    let subscriptionId: string | undefined;
    if (cfg.mode === 'subscribe') {
      const start = performance.now();
      const sub = await runSubscription({
        backend,
        resolver,
        transport: transport as WebSocketTransport,
        body: cfg.payload.body,
        pushes: cfg.pushes,
        timeoutMs: cfg.timeoutMs,
      });
      outcomes = sub.outcomes;
      subscriptionId = sub.subscriptionId;
      durationMs = performance.now() - start;
    } else {
      const client = new RelayClient({
        backend,
        resolver,
        transport,
        rpcType: cfg.rpcType,
        payload: cfg.payload,
        timeoutMs: cfg.timeoutMs,
        retries: cfg.retries,
        retryWithinMs: cfg.retryWithinMs,
        hedgeMs: cfg.hedgeMs,
      });
      const run = await runLoad(() => client.relay(), {
        count: cfg.mode === 'load_test' ? cfg.count : 1,
        concurrency: cfg.concurrency,
        rps: cfg.rps,
        durationMs: cfg.mode === 'load_test' ? cfg.durationMs : undefined,
      });
      outcomes = run.outcomes;
      durationMs = run.durationMs;
    }
    const first = outcomes[0];
    const report: RelayReport = {
      mode: cfg.mode,
      rpc_type: cfg.rpcType,
      url: cfg.url,
      service: cfg.service,
      application: cfg.app,
      supplier: cfg.supplier,
      signer: ctx.signerAddress,
      session: {
        id: ctx.header.sessionId,
        start_height: Number(ctx.header.sessionStartBlockHeight),
        end_height: Number(ctx.header.sessionEndBlockHeight),
      },
      summary: summarize(outcomes, durationMs),
    };
    if ((cfg.mode === 'single' || cfg.mode === 'health_check') && first !== undefined) {
      if (first.ok) report.response = { status: first.status ?? 0, body: bodyText(first.body) };
      else report.error = { reason: first.reason ?? 'unknown', message: first.message ?? '' };
    }
    if (subscriptionId !== undefined) report.subscription_id = subscriptionId;
    if (opts.json === true) io.out(JSON.stringify(report));
    else textReport(report, io, first);
    return report.summary.failed === 0 && report.summary.total > 0 ? EXIT.OK : EXIT.RELAY_FAILED;
  } finally {
    await transport.close();
    chain.close();
  }
}

const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

/** Adds `relay` to the program. */
export function registerRelayCommand(program: Command): Command {
  return program
    .command('relay')
    .description(
      'send relays to a relayer the way PATH does (session lookup, ring signing, retries, hedging) and ' +
        'verify every answer; single relay, health check, WebSocket subscription or load test',
    )
    .option('--node <url>', 'CometBFT RPC URL of a full node (session, ring and key lookups)')
    .option('--app <address>', 'application the relays are sent for')
    .option('--gateway-key-file <file>', 'hex private key of a gateway the application delegates to')
    .option('--app-key-file <file>', "hex private key of the application itself (instead of a gateway's)")
    .option('--service <id>', 'service id')
    .option('--supplier <address>', 'supplier operator address the relays are addressed to')
    .option(
      '--supplier-pubkey <hex>',
      "supplier's compressed public key (default: looked up from its account)",
    )
    .option('--url <url>', 'relayer URL: HTTP port, WebSocket URL, or gRPC listener for grpc/grpc-web')
    .option('--rpc-type <type>', `one of ${RPC_TYPES.join(', ')}`, 'jsonrpc')
    .option('--method <method>', 'HTTP method inside the relay (REST, CometBFT, SSE)')
    .option('--path <path>', 'path and query inside the relay (REST, CometBFT, SSE) or gRPC method')
    .option('--data <text>', 'request body (JSON-RPC request, REST body, WebSocket frame, gRPC message)')
    .option('--data-hex <hex>', 'request body as hex (binary gRPC messages)')
    .option('-H, --header <name:value>', 'header inside the relay (repeatable)', collect)
    .option('--timeout-ms <n>', 'per-attempt timeout (default 10000)')
    .option('--retries <n>', 'further attempts after a 5xx, timeout or connection error (default 1)')
    .option(
      '--retry-within-ms <n>',
      'retry only if the failed attempt took less than this; 0 = always (default 500)',
    )
    .option(
      '--hedge-ms <n>',
      'send a hedged second request if no answer after this long; 0 = off (default 0)',
    )
    .option('--health-check', 'send one synthetic health-check relay')
    .option('--subscribe', 'WebSocket: send eth_subscribe (or --data) and verify --pushes pushes')
    .option('--pushes <n>', 'subscription pushes to wait for (default 3)')
    .option('--load-test', 'send many relays and print a summary')
    .option('--count <n>', 'load test: relays to send')
    .option('--concurrency <n>', 'load test: relays in flight (default 8)')
    .option('--rps <n>', 'load test: relays started per second at most')
    .option('--duration <seconds>', 'load test: stop after this long')
    .option('--json', 'machine-readable output')
    .action(async (opts: RelayCliOptions) => {
      process.exitCode = await runRelay(opts, {
        out: (l) => process.stdout.write(`${l}\n`),
        err: (l) => process.stderr.write(`${l}\n`),
      });
    });
}
