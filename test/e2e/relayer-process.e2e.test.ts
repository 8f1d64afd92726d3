/**
 * The relayer as an operator runs it: `pocket-relay-miner relayer --config <file>` in its own
 * process (JSON logs on stderr, relays on the configured port, SIGTERM drains and exits 0), and
 * `relayer validate --config <file> --check-stake` against the localnet chain.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { bytesToHex } from '../../core/index.js';
import { startDemoBackends, type DemoBackends } from '../../localnet/backends/index.js';
import { encodePoktHttpRequest, encodeRelayRequest } from '../../protocol/index.js';
import { runRelayerCheckStake } from '../../cmd/relayer-validate.js';
import {
  expectedRingAddresses,
  selectBackend,
  signGatewayRelayRequest,
  verifyHttpRelayResponse,
} from '../../rings/index.js';
import { BlockEventPublisher } from '../../cache/index.js';
import { KeyBuilder, PubSub, createRedisClient, deleteKeysWithPrefix } from '../../transport/index.js';
import pino from 'pino';
import { freePort, waitFor } from '../helpers/redis-server.js';
import { redisUrl } from '../helpers/redis.js';
import {
  APP,
  GATEWAY,
  SUPPLIER,
  startChainWithClient,
  testGenesis,
  type ChainWithClient,
} from './localnet-fixtures.js';

const ec = selectBackend('native');
const root = join(import.meta.dirname, '..', '..');
let chain: ChainWithClient;
let backends: DemoBackends;
let dir: string;
const prefix = `t:${randomBytes(6).toString('hex')}:`;

beforeAll(async () => {
  chain = await startChainWithClient(testGenesis(), 5);
  backends = await startDemoBackends();
  dir = mkdtempSync(join(tmpdir(), 'relayer-proc-'));
  writeFileSync(join(dir, 'keys.yaml'), `keys:\n  - ${bytesToHex(SUPPLIER.privateKey)}\n`, { mode: 0o600 });
}, 30_000);
afterAll(async () => {
  await backends?.close();
  await chain?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function writeConfig(name: string, cfg: Record<string, unknown>): string {
  const p = join(dir, name);
  writeFileSync(p, stringify(cfg));
  return p;
}

function baseConfig(port: number): Record<string, unknown> {
  return {
    listen_addr: `127.0.0.1:${port}`,
    redis: { url: redisUrl(), namespace: { base_prefix: `${prefix}ha` } },
    pocket_node: { query_node_rpc_url: chain.net.url, query_node_grpc_url: chain.net.url },
    keys: { keys_file: join(dir, 'keys.yaml') },
    services: { anvil: { validation_mode: 'eager', backends: { jsonrpc: { url: backends.jsonrpc.url } } } },
    metrics: { enabled: false },
    pprof: { enabled: false },
    health_check: { enabled: false },
    grpc: { enabled: false },
    websocket: { enabled: false },
    relay_meter: { redis_key_prefix: `${prefix}ha` },
    ring_verify: { threads: 1 },
  };
}

describe('pocket-relay-miner relayer --config', () => {
  it('serves a relay, logs JSON, drains on SIGTERM and exits 0', async () => {
    const port = await freePort();
    const cfgPath = writeConfig('relayer.yaml', baseConfig(port));
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(root, 'cmd', 'main.ts'), 'relayer', '--config', cfgPath],
      {
        cwd: root,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
    const redis = await createRedisClient({ url: redisUrl() });
    const sub = redis.duplicate();
    const pubsub = new PubSub({ publisher: redis, subscriber: sub, log: pino({ level: 'silent' }) });
    try {
      await waitFor(() => stderr.includes('"relayer started"'), 20_000);
      const keys = new KeyBuilder({ namespace: { base_prefix: `${prefix}ha` } });
      await new BlockEventPublisher({ pubsub, keys }).publish({ height: 5, hash: new Uint8Array(32) });
      const header = (await chain.query.getSession(APP.address, 'anvil', 5)).header!;
      const ring = expectedRingAddresses(
        APP.address,
        { delegateeGatewayAddresses: [GATEWAY.address], pendingUndelegations: new Map() },
        header.sessionEndBlockHeight,
      ).map((a) => (a === APP.address ? APP.publicKey : GATEWAY.publicKey));
      const req = signGatewayRelayRequest(ec, {
        header,
        supplierOperatorAddress: SUPPLIER.address,
        payload: encodePoktHttpRequest({
          method: 'POST',
          url: '/',
          headers: [['Content-Type', ['application/json']]],
          body: Buffer.from('{"jsonrpc":"2.0","id":3,"method":"eth_chainId"}'),
        }),
        ringPublicKeys: ring,
        signerIndex: ring.indexOf(GATEWAY.publicKey),
        signerPrivateKey: GATEWAY.privateKey,
      });
      // Block events reach the relayer asynchronously; retry until it has a height.
      let status = 0;
      let bytes = new Uint8Array(0);
      await waitFor(async () => {
        const res = await fetch(`http://127.0.0.1:${port}/`, {
          method: 'POST',
          body: encodeRelayRequest(req),
        });
        status = res.status;
        bytes = new Uint8Array(await res.arrayBuffer());
        return status === 200;
      }, 10_000);
      const v = verifyHttpRelayResponse(ec, bytes, SUPPLIER.publicKey, header);
      expect(v.ok && JSON.parse(Buffer.from(v.body).toString())).toEqual({
        jsonrpc: '2.0',
        id: 3,
        result: '0x1',
      });
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      const lines = stderr.trim().split('\n');
      for (const l of lines) expect(() => JSON.parse(l) as unknown).not.toThrow();
      expect(stderr).toContain('"relayer stopped"');
      expect(stderr).not.toContain(bytesToHex(SUPPLIER.privateKey));
      expect(await redis.xlen(keys.relayStream(SUPPLIER.address))).toBe(1);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await pubsub.close();
      await deleteKeysWithPrefix(redis, prefix);
      await redis.quit();
    }
  }, 60_000);

  it('refuses to start without a supplier key, naming the key to set', async () => {
    const cfg = baseConfig(await freePort());
    cfg['keys'] = {};
    const cfgPath = writeConfig('nokeys.yaml', cfg);
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(root, 'cmd', 'main.ts'), 'relayer', '--config', cfgPath],
      {
        cwd: root,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((res) => child.once('exit', (c) => res(c)));
    expect(code).toBe(1);
    expect(stderr).toContain('nokeys.yaml: 1 problem:\n  - keys: no supplier key source');
  }, 30_000);
});

describe('relayer validate --check-stake', () => {
  function run(path: string, node?: string): Promise<{ code: number; out: string[]; err: string[] }> {
    const out: string[] = [];
    const err: string[] = [];
    return runRelayerCheckStake(path, { out: (l) => out.push(l), err: (l) => err.push(l) }, node).then(
      (code) => ({
        code,
        out,
        err,
      }),
    );
  }

  it('accepts a config that serves every staked transport and warns about an unstaked backend', async () => {
    const cfg = baseConfig(8080);
    (cfg['services'] as Record<string, unknown>)['anvil'] = {
      backends: { jsonrpc: { url: backends.jsonrpc.url }, rest: { url: backends.rest.url } },
    };
    const p = writeConfig('stake-ok.yaml', cfg);
    expect(await run(p)).toEqual({
      code: 0,
      out: [`${p}: valid (1 service: anvil)`, `${p}: stakes of 1 supplier checked: 0 error(s), 1 warning(s)`],
      err: [
        'warning: services.anvil.backends.rest: no supplier of this relayer is staked for anvil over rest; nothing will reach it',
      ],
    });
  });

  it('fails when a staked transport has no backend', async () => {
    const cfg = baseConfig(8080);
    cfg['services'] = { other: { backends: { rest: { url: backends.rest.url } } } };
    const p = writeConfig('stake-bad.yaml', cfg);
    const r = await run(p);
    expect(r.code).toBe(1);
    expect(r.err).toEqual([
      `error: services.anvil.backends.jsonrpc: supplier ${SUPPLIER.address} is staked for anvil over jsonrpc but no jsonrpc backend is configured`,
      'warning: services.other.backends.rest: no supplier of this relayer is staked for other over rest; nothing will reach it',
    ]);
  });

  it('exits 3 with the URL when the chain cannot be reached', async () => {
    const p = writeConfig('stake-unreachable.yaml', baseConfig(8080));
    const dead = `http://127.0.0.1:${await freePort()}`;
    const r = await run(p, dead);
    expect(r.code).toBe(3);
    expect(r.err[0]).toMatch(new RegExp(`^${dead}: cannot read supplier stakes: `));
  });
});
