/**
 * Private keys never reach the logs. A relayer and a miner run as real child processes
 * (`cmd/main.ts relayer|miner --config`) at log level debug; relays are served, the miner claims
 * the session on the localnet; then both binaries are started with bad configs and bad key files
 * (a key in a field where no key belongs, a truncated key, a key file that is not YAML around a
 * valid key). Everything every process wrote to stdout and stderr is scanned for every key in
 * hex (lower and upper case), base64 and base64url, for the raw key files' contents, and for any
 * 64-hex-digit run that equals a key. The scan must find nothing.
 *
 * The logger's own redaction (core/log.ts) is unit-tested at the end with keys under the field
 * names the code base uses.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { BlockEventPublisher } from '../../cache/index.js';
import { bytesToHex, createLogger } from '../../core/index.js';
import { startDemoBackends, type DemoBackends } from '../../localnet/backends/index.js';
import { encodePoktHttpRequest, encodeRelayRequest } from '../../protocol/index.js';
import {
  expectedRingAddresses,
  selectBackend,
  signGatewayRelayRequest,
  verifyHttpRelayResponse,
} from '../../rings/index.js';
import { KeyBuilder, PubSub, createRedisClient, deleteKeysWithPrefix } from '../../transport/index.js';
import { freePort, waitFor } from '../helpers/redis-server.js';
import { redisUrl } from '../helpers/redis.js';
import { recordReliability } from '../helpers/reliability.js';
import {
  APP,
  GATEWAY,
  SUPPLIER,
  startChainWithClient,
  testGenesis,
  testKey,
  type ChainWithClient,
  type TestKey,
} from '../e2e/localnet-fixtures.js';

const root = join(import.meta.dirname, '..', '..');
const ec = selectBackend('native');
/** A key that only ever appears in the bad inputs. */
const STRAY = testKey('hostile-stray-key');
const prefix = `t:${randomBytes(6).toString('hex')}:`;

let chain: ChainWithClient;
let backends: DemoBackends;
let dir: string;
const children: ChildProcess[] = [];
/** Every byte every child wrote, by run name. */
const captured = new Map<string, string>();
/** Key files written for the children (their contents are secrets too). */
const keyFileContents: string[] = [];

beforeAll(async () => {
  chain = await startChainWithClient(testGenesis(), 5);
  backends = await startDemoBackends();
  dir = mkdtempSync(join(tmpdir(), 'secrets-logs-'));
}, 30_000);
afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await backends?.close();
  await chain?.stop();
  rmSync(dir, { recursive: true, force: true });
  const redis = await createRedisClient({ url: redisUrl() });
  await deleteKeysWithPrefix(redis, prefix);
  await redis.quit();
});

function writeSecret(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text, { mode: 0o600 });
  keyFileContents.push(text);
  return p;
}

function writeConfig(name: string, cfg: unknown): string {
  const p = join(dir, name);
  writeFileSync(p, stringify(cfg));
  return p;
}

interface Run {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

/** `cmd/main.ts <args>` as a child; stdout and stderr captured under `name`. */
function run(name: string, args: string[]): Run {
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'cmd', 'main.ts'), ...args], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  const add = (d: Buffer): void => {
    out += d.toString('utf8');
    captured.set(name, out);
  };
  captured.set(name, '');
  child.stdout.on('data', add);
  child.stderr.on('data', add);
  const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
  return { child, output: () => out, exited };
}

function relayerConfig(port: number, keysFile: string): Record<string, unknown> {
  return {
    listen_addr: `127.0.0.1:${port}`,
    redis: { url: redisUrl(), namespace: { base_prefix: `${prefix}ha` } },
    pocket_node: { query_node_rpc_url: chain.net.url, query_node_grpc_url: chain.net.url },
    keys: { keys_file: keysFile },
    services: { anvil: { validation_mode: 'eager', backends: { jsonrpc: { url: backends.jsonrpc.url } } } },
    metrics: { enabled: false },
    pprof: { enabled: false },
    health_check: { enabled: false },
    grpc: { enabled: false },
    websocket: { enabled: false },
    relay_meter: { redis_key_prefix: `${prefix}ha` },
    ring_verify: { threads: 1 },
    logging: { level: 'debug' },
  };
}

function minerConfig(keysDir: string, metricsPort: number): Record<string, unknown> {
  return {
    redis: { url: redisUrl(), namespace: { base_prefix: `${prefix}ha` }, consumer_name: 'secrets' },
    pocket_node: {
      query_node_rpc_url: chain.net.url,
      query_node_grpc_url: chain.net.url,
      query_timeout_seconds: 3,
    },
    keys: { keys_dir: keysDir },
    block_time_seconds: 1,
    supplier_reconcile_interval_seconds: -1,
    metrics: { enabled: true, addr: `127.0.0.1:${metricsPort}` },
    logging: { level: 'debug' },
  };
}

/** Every spelling of a key a leak could take. */
function spellings(k: Uint8Array): string[] {
  const hex = bytesToHex(k);
  const b = Buffer.from(k);
  return [hex, hex.toUpperCase(), b.toString('base64'), b.toString('base64url'), `0x${hex}`];
}

/**
 * Hits of the keys (every spelling), of key files' contents and of any run of 16+ hex digits that
 * is part of a key, in `text`; described for the failure message.
 */
function scan(text: string, keys: readonly Uint8Array[], rawSecrets: readonly string[]): string[] {
  const hits: string[] = [];
  const hexKeys = new Set(keys.map((k) => bytesToHex(k)));
  for (const k of keys) {
    for (const sp of spellings(k)) if (text.includes(sp)) hits.push(`key spelled ${sp.slice(0, 6)}…`);
  }
  for (const raw of rawSecrets) {
    if (raw.trim() !== '' && text.includes(raw.trim())) hits.push('key file contents');
  }
  // Whole keys, and fragments: a parser excerpt cut at 60 of 64 digits is as good as the key.
  for (const m of text.matchAll(/[0-9a-fA-F]{16,}/g)) {
    const run = m[0].toLowerCase();
    for (const k of hexKeys) {
      if (k.includes(run) || run.includes(k))
        hits.push(`hex run of ${run.length} digits from a key (${run.slice(0, 6)}…)`);
    }
  }
  return hits;
}

function signedRelay(id: number): Uint8Array {
  return encodeRelayRequest(
    signGatewayRelayRequest(ec, {
      header: headerAt5!,
      supplierOperatorAddress: SUPPLIER.address,
      payload: encodePoktHttpRequest({
        method: 'POST',
        url: '/',
        headers: [['Content-Type', ['application/json']]],
        body: Buffer.from(JSON.stringify({ jsonrpc: '2.0', id, method: 'eth_chainId' })),
      }),
      ringPublicKeys: ring,
      signerIndex: ring.indexOf(GATEWAY.publicKey),
      signerPrivateKey: GATEWAY.privateKey,
    }),
  );
}
let headerAt5: Awaited<ReturnType<ChainWithClient['query']['getSession']>>['header'];
let ring: Uint8Array[] = [];

const ALL_KEYS: readonly TestKey[] = [SUPPLIER, STRAY];

describe('relayer and miner processes at log level debug', () => {
  it('serve, claim, and refuse bad configs and key files without writing a key anywhere', async () => {
    const relayerPort = await freePort();
    const minerPort = await freePort();
    const keysFile = writeSecret('keys.yaml', `keys:\n  - ${bytesToHex(SUPPLIER.privateKey)}\n`);
    const keysDir = join(dir, 'keys');
    mkdirSync(keysDir);
    writeSecret(
      'keys/supplier-1.yaml',
      `operator_address: ${SUPPLIER.address}\nprivate_key_hex: ${bytesToHex(SUPPLIER.privateKey)}\n`,
    );

    const relayer = run('relayer', [
      'relayer',
      '--config',
      writeConfig('relayer.yaml', relayerConfig(relayerPort, keysFile)),
    ]);
    const miner = run('miner', [
      'miner',
      '--config',
      writeConfig('miner.yaml', minerConfig(keysDir, minerPort)),
    ]);
    const redis = await createRedisClient({ url: redisUrl() });
    const sub = redis.duplicate();
    const pubsub = new PubSub({ publisher: redis, subscriber: sub, log: pino({ level: 'silent' }) });
    let served = 0;
    try {
      await waitFor(() => relayer.output().includes('"relayer started"'), 30_000);
      await waitFor(() => miner.output().includes('"miner started"'), 30_000);
      headerAt5 = (await chain.query.getSession(APP.address, 'anvil', 5)).header;
      ring = expectedRingAddresses(
        APP.address,
        { delegateeGatewayAddresses: [GATEWAY.address], pendingUndelegations: new Map() },
        headerAt5!.sessionEndBlockHeight,
      ).map((a) => (a === APP.address ? APP.publicKey : GATEWAY.publicKey));
      const keys = new KeyBuilder({ namespace: { base_prefix: `${prefix}ha` } });
      await new BlockEventPublisher({ pubsub, keys }).publish({ height: 5, hash: new Uint8Array(32) });

      // Relays, some valid and one with a bad signature (a debug-level rejection line).
      for (let i = 0; i < 6; i++) {
        const body = signedRelay(i);
        const res = await fetch(`http://127.0.0.1:${relayerPort}/`, { method: 'POST', body });
        const bytes = new Uint8Array(await res.arrayBuffer());
        if (res.status === 200 && verifyHttpRelayResponse(ec, bytes, SUPPLIER.publicKey, headerAt5).ok)
          served++;
      }
      const forged = signedRelay(99);
      forged[forged.length - 1] = forged[forged.length - 1]! ^ 0xff;
      await (await fetch(`http://127.0.0.1:${relayerPort}/`, { method: 'POST', body: forged })).arrayBuffer();
      expect(served).toBe(6);

      // Blocks until the session's claim lands (claim window opens at 10).
      for (let h = 6; h <= 13 && chain.net.chain.claims().length === 0; h++) {
        chain.net.chain.advanceTo(h);
        await new Promise((r) => setTimeout(r, 400));
      }
      await waitFor(() => chain.net.chain.claims().length > 0, 15_000);
      expect(chain.net.chain.claims().map((c) => c.supplierOperatorAddress)).toEqual([SUPPLIER.address]);
    } finally {
      relayer.child.kill('SIGTERM');
      miner.child.kill('SIGTERM');
      await Promise.all([relayer.exited, miner.exited]);
      await pubsub.close();
      await redis.quit();
    }

    // Bad inputs: each must fail to start with a message that does not echo the key.
    const strayHex = bytesToHex(STRAY.privateKey);
    const truncatedKeys = writeSecret('truncated.yaml', `keys:\n  - ${strayHex.slice(0, 63)}\n`);
    const notYamlDir = join(dir, 'bad-keys');
    mkdirSync(notYamlDir);
    // Broken YAML on the key's own line: a parser error quoting its context would carry the key.
    writeSecret(
      'bad-keys/broken.yaml',
      `operator_address: ${SUPPLIER.address}\nprivate_key_hex: [${strayHex}\n  - {\n`,
    );
    const brokenKeysFile = writeSecret('broken-keys.yaml', `keys:\n  - [${strayHex}\n  - {\n`);
    const upperWrongField = writeSecret(
      'wrong-field.yaml',
      `keys:\n  private_key: ${strayHex.toUpperCase()}\n`,
    );
    const badRuns: [string, string[]][] = [
      [
        'relayer: key in an unknown config field',
        [
          'relayer',
          '--config',
          writeConfig('leaky-relayer.yaml', {
            ...relayerConfig(await freePort(), keysFile),
            keys: { keys_file: keysFile, private_key_hex: strayHex },
          }),
        ],
      ],
      [
        'relayer: key as a listen address',
        [
          'relayer',
          '--config',
          writeConfig('leaky-addr.yaml', { ...relayerConfig(0, keysFile), listen_addr: strayHex }),
        ],
      ],
      [
        'relayer: truncated key in keys_file',
        [
          'relayer',
          '--config',
          writeConfig('trunc-relayer.yaml', relayerConfig(await freePort(), truncatedKeys)),
        ],
      ],
      [
        'relayer: keys_file with the key under a map instead of a list',
        [
          'relayer',
          '--config',
          writeConfig('wrong-field-relayer.yaml', relayerConfig(await freePort(), upperWrongField)),
        ],
      ],
      [
        'relayer: keys_file that is not YAML around a key',
        [
          'relayer',
          '--config',
          writeConfig('broken-relayer.yaml', relayerConfig(await freePort(), brokenKeysFile)),
        ],
      ],
      [
        'miner: keys_dir file that is not YAML around a key',
        ['miner', '--config', writeConfig('broken-miner.yaml', minerConfig(notYamlDir, await freePort()))],
      ],
      [
        'miner: key as the redis url',
        [
          'miner',
          '--config',
          writeConfig('leaky-miner.yaml', {
            ...minerConfig(keysDir, await freePort()),
            redis: { url: `redis://${strayHex}@127.0.0.1:1` },
          }),
        ],
      ],
    ];
    const exitCodes: Record<string, number | null> = {};
    for (const [name, args] of badRuns) {
      const r = run(name, args);
      const timer = setTimeout(() => r.child.kill('SIGKILL'), 15_000);
      exitCodes[name] = await r.exited;
      clearTimeout(timer);
    }
    // None of them may come up; each says why (non-empty output).
    for (const [name] of badRuns) {
      expect({
        name,
        failed: exitCodes[name] !== 0,
        said: (captured.get(name) ?? '').trim().length > 0,
      }).toEqual({
        name,
        failed: true,
        said: true,
      });
    }

    const keys = ALL_KEYS.map((k) => k.privateKey);
    const hits: Record<string, string[]> = {};
    let bytesScanned = 0;
    for (const [name, text] of captured) {
      bytesScanned += text.length;
      const h = scan(text, keys, keyFileContents);
      if (h.length > 0) hits[name] = h;
    }
    recordReliability('hostile', 'secrets-in-logs', {
      scenario:
        'relayer + miner child processes at debug: 6 relays + 1 forged, a claim on the localnet, then 7 bad configs / key files',
      processes: captured.size,
      log_bytes_scanned: bytesScanned,
      relays_served: served,
      claims: chain.net.chain.claims().length,
      key_hits: Object.values(hits).reduce((a, h) => a + h.length, 0),
    });
    expect(hits).toEqual({});
    // The scan itself finds what it looks for.
    expect(scan(`x ${bytesToHex(STRAY.privateKey).toUpperCase()} y`, keys, []).length).toBeGreaterThan(0);
    expect(scan(Buffer.from(STRAY.privateKey).toString('base64'), keys, []).length).toBeGreaterThan(0);
  }, 150_000);
});

describe('core/log.ts redaction', () => {
  const hex = bytesToHex(STRAY.privateKey);

  function logged(format: 'json' | 'text', obj: Record<string, unknown>): string {
    const file = join(dir, `log-${format}-${randomBytes(4).toString('hex')}.log`);
    const log = createLogger({ level: 'debug', format, output: file, async: false }, 'relayer');
    log.info(obj, 'with secrets');
    log.flush();
    return readFileSync(file, 'utf8');
  }

  const FIELDS = [
    'privateKey',
    'private_key',
    'privKey',
    'private_key_hex',
    'privateKeyHex',
    'signerPrivateKey',
    'secret',
    'password',
    'mnemonic',
    'authorization',
  ];

  it.each(['json', 'text'] as const)(
    '%s: every secret field is [redacted] at the top level and one level down',
    (format) => {
      const top = Object.fromEntries(FIELDS.map((f) => [f, hex]));
      const nested = { supplier: Object.fromEntries(FIELDS.map((f) => [f, hex])) };
      const out = logged(format, { ...top, ...nested, supplier_address: SUPPLIER.address });
      expect(scan(out, [STRAY.privateKey], [])).toEqual([]);
      if (format === 'json') {
        const rec = JSON.parse(out.trim()) as Record<string, unknown>;
        const censored = Object.fromEntries(FIELDS.map((f) => [f, '[redacted]']));
        expect({ ...rec, time: 0, pid: 0, hostname: '' }).toEqual({
          level: 30,
          time: 0,
          pid: 0,
          hostname: '',
          service: 'relayer',
          msg: 'with secrets',
          supplier_address: SUPPLIER.address,
          ...censored,
          supplier: censored,
        });
      } else {
        expect(out).toContain(`supplier_address=${SUPPLIER.address}`);
        expect(out).toContain('privateKey=[redacted]');
      }
    },
  );
});
