/**
 * Relayer behaviour beyond the happy path, over real sockets: optimistic validation (served, then
 * dropped and counted when invalid), a backend that is down, simulated relays, Redis killed and
 * restarted mid-run (answers per fail_behavior, nothing acknowledged is lost once Redis is back)
 * and graceful shutdown draining an in-flight relay.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { bytesToHex } from '../../core/index.js';
import { decodeRelay, type SessionHeader } from '../../protocol/index.js';
import { freePort, startRedisServer, stopRedisServer, waitFor } from '../helpers/redis-server.js';
import { APP, GATEWAY, SUPPLIER, testKey } from './localnet-fixtures.js';
import { startRelayerStack, type RelayerStack } from './relayer-fixtures.js';

const RPC = '{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}';

async function post(
  s: RelayerStack,
  body: Uint8Array,
  headers: Record<string, string> = { 'Rpc-Type': '3' },
) {
  const res = await fetch(`${s.url}/`, { method: 'POST', body, headers });
  return { status: res.status, bytes: new Uint8Array(await res.arrayBuffer()) };
}

/** Ring signatures of the requests mined in the stream (they identify the client's relays). */
async function minedSignatures(s: RelayerStack): Promise<string[]> {
  return (await s.streamEntries()).map((m) => {
    const r = decodeRelay(m.relay_bytes);
    if (!r.ok) throw new Error(r.reason);
    return bytesToHex(r.value.req!.meta!.signature);
  });
}

describe('optimistic validation', () => {
  let s: RelayerStack;
  let header: SessionHeader;
  beforeAll(async () => {
    s = await startRelayerStack({ validationMode: 'optimistic' });
    header = await s.session('anvil');
  }, 30_000);
  afterAll(async () => s?.close());

  it('serves a valid relay and publishes it after validating in the background', async () => {
    const { bytes } = s.signRequest(header, s.httpPayload({ body: RPC }));
    const res = await post(s, bytes);
    expect(res.status).toBe(200);
    expect(s.verifyHttp(res.bytes, header).ok).toBe(true);
    expect(await s.waitForEntries(1)).toHaveLength(1);
  });

  it('serves a relay with a bad ring signature but drops it (counted, never published)', async () => {
    const before = (await s.streamEntries()).length;
    const { bytes } = s.signRequest(header, s.httpPayload({ body: RPC }), {
      ringMember: testKey('outsider'),
    });
    const res = await post(s, bytes);
    expect(res.status).toBe(200);
    await waitFor(
      async () => (await s.metric('ha_relayer_relays_dropped_total', { reason: 'validation_failed' })) === 1,
    );
    await s.relayer.publisher.flush();
    expect((await s.streamEntries()).length).toBe(before);
    // The relay was served, so the session ledger counts it as dropped (never claimable).
    await waitFor(
      async () =>
        (await s.redis.hget(s.keys.minerLedger(SUPPLIER.address, header.sessionId), 'dropped')) === '1',
    );
  });
});

describe('optimistic over budget', () => {
  it('serves the relay over the budget, drops it and counts it as over_serviced in the ledger', async () => {
    const s = await startRelayerStack({
      validationMode: 'optimistic',
      beforeStart: async (redis, keys) => {
        // Exactly two relays of 84 uPOKT fit the budget.
        await redis.set(
          keys.serviceFactorServiceKey('anvil'),
          JSON.stringify({ factor: 168 / 100_000_000, updated_at: 0 }),
        );
      },
    });
    try {
      const header = await s.session('anvil');
      const statuses: number[] = [];
      for (let i = 0; i < 3; i++) {
        statuses.push((await post(s, s.signRequest(header, s.httpPayload({ body: RPC })).bytes)).status);
      }
      expect(statuses).toEqual([200, 200, 200]);
      const ledger = s.keys.minerLedger(SUPPLIER.address, header.sessionId);
      await waitFor(async () => (await s.redis.hget(ledger, 'over_serviced')) === '1');
      expect(await s.waitForEntries(2)).toHaveLength(2);
      await s.relayer.publisher.flush();
      expect(await s.streamEntries()).toHaveLength(2);
      expect(await s.redis.hgetall(ledger)).toEqual({ over_serviced: '1' });
    } finally {
      await s.close();
    }
  }, 30_000);
});

describe('simulated relays', () => {
  let s: RelayerStack;
  beforeAll(async () => {
    s = await startRelayerStack({
      configure: (cfg) => {
        cfg.simulation = {
          enabled: true,
          identities: [
            {
              key_id: 'probe-1',
              enabled: true,
              max_rps: 50,
              app_pubkey_hex: bytesToHex(APP.publicKey),
              gateway_pubkeys_hex: [bytesToHex(GATEWAY.publicKey)],
            },
          ],
        };
      },
    });
  }, 30_000);
  afterAll(async () => s?.close());

  it('serves a signed answer without metering or publishing; a replay is refused with 409', async () => {
    const real = await s.session('anvil');
    const header: SessionHeader = {
      ...real,
      sessionId: `simv1:${Math.floor(Date.now() / 1000)}:0a1b2c`,
    };
    const { bytes } = s.signRequest(header, s.httpPayload({ body: RPC }));
    const headers = { 'Rpc-Type': '3', 'Pocket-Simulation-Key-Id': 'probe-1' };
    const res = await post(s, bytes, headers);
    expect(res.status).toBe(200);
    const v = s.verifyHttp(res.bytes, header);
    expect(v.ok && JSON.parse(Buffer.from(v.body).toString())).toEqual({
      jsonrpc: '2.0',
      id: 1,
      result: '0x1',
    });
    const again = await post(s, bytes, headers);
    expect(again.status).toBe(409);
    expect(JSON.parse(Buffer.from(again.bytes).toString())).toEqual({
      error: expect.stringMatching(/^simulation rejected: /),
    });
    await s.relayer.publisher.flush();
    expect(await s.streamEntries()).toEqual([]);
    expect(await s.metric('ha_relayer_simulated_relays_total', { result: 'success' })).toBe(1);
    expect(await s.metric('ha_relayer_relay_meter_decisions_total')).toBe(0);
    // Without simulation the same header is an ordinary relay and fails validation.
    const plain = await post(s, s.signRequest(header, s.httpPayload({ body: RPC })).bytes);
    expect(plain.status).toBe(403);
  });

  it('an unknown key id is refused with 403 and nothing is served', async () => {
    const header = { ...(await s.session('anvil')), sessionId: `simv1:${Math.floor(Date.now() / 1000)}:ff` };
    const res = await post(s, s.signRequest(header, s.httpPayload({ body: RPC })).bytes, {
      'Rpc-Type': '3',
      'Pocket-Simulation-Key-Id': 'nope',
    });
    expect(res.status).toBe(403);
  });
});

describe('backend down', () => {
  let s: RelayerStack;
  beforeAll(async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    s = await startRelayerStack({
      configure: (cfg) => {
        cfg.services['anvil']!.backends['jsonrpc'] = { url: dead, max_retries: 0 };
      },
    });
  }, 30_000);
  afterAll(async () => s?.close());

  it('answers 502 "backend error", publishes nothing, and trips the breaker to a 503 fast-fail', async () => {
    const header = await s.session('anvil');
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) {
      const { bytes } = s.signRequest(header, s.httpPayload({ body: RPC }));
      const res = await post(s, bytes);
      statuses.push(res.status);
      const body = JSON.parse(Buffer.from(res.bytes).toString()) as Record<string, string>;
      expect(body).toEqual(
        res.status === 502
          ? { error: 'backend error' }
          : { error: 'service temporarily unavailable', service: 'anvil' },
      );
    }
    // Five consecutive failures trip the breaker (upstream default threshold).
    expect(statuses).toEqual([502, 502, 502, 502, 502, 503]);
    await s.relayer.publisher.flush();
    expect(await s.streamEntries()).toEqual([]);
    expect(await s.metric('ha_relayer_relays_rejected_total', { reason: 'backend_network_error' })).toBe(5);
  });
});

describe('Redis killed and restarted', () => {
  const servers: ChildProcess[] = [];
  const dirs: string[] = [];
  const stacks: RelayerStack[] = [];
  afterEach(async () => {
    for (const s of stacks.splice(0)) await s.close();
    for (const p of servers.splice(0)) await stopRedisServer(p);
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  async function setup(
    failBehavior: 'open' | 'closed',
  ): Promise<{ s: RelayerStack; port: number; dir: string }> {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'relayer-redis-'));
    dirs.push(dir);
    servers.push(await startRedisServer(port, { appendonly: true, dir }));
    const s = await startRelayerStack({ redisUrl: `redis://127.0.0.1:${port}`, failBehavior });
    stacks.push(s);
    return { s, port, dir };
  }

  it('fail open: keeps answering while Redis is down, then every acknowledged relay lands in the stream', async () => {
    const { s, port, dir } = await setup('open');
    const header = await s.session('anvil');
    const acknowledged: string[] = [];
    const send = async (): Promise<number> => {
      const { request, bytes } = s.signRequest(header, s.httpPayload({ body: RPC }));
      const res = await post(s, bytes);
      if (res.status === 200) {
        expect(s.verifyHttp(res.bytes, header).ok).toBe(true);
        acknowledged.push(bytesToHex(request.meta!.signature));
      }
      return res.status;
    };
    for (let i = 0; i < 3; i++) expect(await send()).toBe(200);
    await s.waitForEntries(3);

    await stopRedisServer(servers.pop()!);
    const during: number[] = [];
    for (let i = 0; i < 5; i++) during.push(await send());
    expect(during).toEqual([200, 200, 200, 200, 200]);
    expect(s.relayer.publisher.buffered).toBe(5);

    servers.push(await startRedisServer(port, { appendonly: true, dir }));
    await waitFor(async () => (await s.streamEntries().catch(() => [])).length >= 8, 15_000);
    const mined = await minedSignatures(s);
    expect(new Set(mined)).toEqual(new Set(acknowledged));
    expect(mined).toHaveLength(8);
    // Publishing resumed for new relays too.
    expect(await send()).toBe(200);
    await s.waitForEntries(9);
  }, 60_000);

  it('fail closed: refuses with 503 "relay metering unavailable" while Redis is down, serves again after', async () => {
    const { s, port, dir } = await setup('closed');
    const header = await s.session('anvil');
    const one = async (): Promise<{ status: number; body: string }> => {
      const { bytes } = s.signRequest(header, s.httpPayload({ body: RPC }));
      const res = await post(s, bytes);
      return { status: res.status, body: Buffer.from(res.bytes).toString() };
    };
    expect((await one()).status).toBe(200);
    await stopRedisServer(servers.pop()!);
    expect(await one()).toEqual({ status: 503, body: '{"error":"relay metering unavailable"}' });
    servers.push(await startRedisServer(port, { appendonly: true, dir }));
    await waitFor(async () => (await one()).status === 200, 15_000);
  }, 60_000);
});

describe('ops listeners', () => {
  it('serve /health, /ready, /ready/{service} and Prometheus /metrics with the relay counters', async () => {
    const s = await startRelayerStack({
      configure: (cfg) => {
        cfg.health_check = { enabled: true, addr: '127.0.0.1:0' };
        cfg.metrics = { enabled: true, addr: '127.0.0.1:0' };
      },
    });
    try {
      const h = `http://127.0.0.1:${s.relayer.healthPort}`;
      const m = `http://127.0.0.1:${s.relayer.metricsPort}`;
      const header = await s.session('anvil');
      expect((await post(s, s.signRequest(header, s.httpPayload({ body: RPC })).bytes)).status).toBe(200);
      expect(await (await fetch(`${h}/health`)).text()).toBe('OK');
      expect(await (await fetch(`${h}/ready`)).text()).toBe('READY');
      const ready = await fetch(`${h}/ready/anvil`);
      expect(ready.status).toBe(200);
      expect(((await ready.json()) as { ready: boolean }).ready).toBe(true);
      expect((await fetch(`${h}/ready/nope`)).status).toBe(404);
      const text = await (await fetch(`${m}/metrics`)).text();
      expect(text).toContain('ha_relayer_relays_received_total{service_id="anvil",rpc_type="jsonrpc"} 1');
      expect(text).toContain(
        'ha_relayer_relays_served_total{service_id="anvil",rpc_type="jsonrpc",status_code="200"} 1',
      );
    } finally {
      await s.close();
    }
  }, 30_000);
});

describe('graceful shutdown', () => {
  it('finishes an in-flight relay and publishes it before stopping; new connections are refused', async () => {
    const s = await startRelayerStack();
    try {
      const header = await s.session('anvil');
      const { bytes } = s.signRequest(
        header,
        s.httpPayload({ body: '{"jsonrpc":"2.0","id":7,"method":"demo_slow","params":[400]}' }),
      );
      const inflight = post(s, bytes);
      await new Promise((r) => setTimeout(r, 100));
      const stopping = s.relayer.stop();
      const res = await inflight;
      expect(res.status).toBe(200);
      const v = s.verifyHttp(res.bytes, header);
      expect(v.ok && JSON.parse(Buffer.from(v.body).toString())).toEqual({
        jsonrpc: '2.0',
        id: 7,
        result: 'slow',
      });
      expect(await stopping).toEqual({ unsent: 0 });
      expect(await s.streamEntries()).toHaveLength(1);
      // A kept-alive connection gets 503 and is closed; a new one is refused.
      const after = await fetch(`${s.url}/health`).then(
        async (r) => ({ status: r.status, body: await r.json() }),
        () => 'refused',
      );
      if (after !== 'refused')
        expect(after).toEqual({ status: 503, body: { status: 'shutting_down', block_height: 5 } });
      await expect(fetch(`${s.url}/health`)).rejects.toThrow();
    } finally {
      await s.close();
    }
  }, 30_000);
});
