import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterEach, describe, expect, it } from 'vitest';
import { GenesisInvalidError } from '../localnet/index.js';
import { registerLocalnetCommand, runLocalnet } from './localnet.js';

function helpText(): string {
  const program = new Command('pocket-relay-miner');
  const cmd = registerLocalnetCommand(program);
  return cmd.helpInformation();
}

describe('pocket-relay-miner localnet', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('--help documents every flag', () => {
    const program = new Command('pocket-relay-miner');
    const cmd = registerLocalnetCommand(program);
    const flags = cmd.options.map((o) => o.flags);
    expect(flags).toEqual([
      '-g, --genesis <file>',
      '--host <address>',
      '-p, --port <port>',
      '-b, --block-time-ms <ms>',
    ]);
    const help = helpText();
    for (const o of cmd.options) {
      expect(help).toContain(o.flags);
      expect(o.description.length).toBeGreaterThan(10);
      expect(help).toContain(o.description.slice(0, 30));
    }
    expect(help).toContain('-h, --help');
  });

  it('a bad genesis file fails with every field named by its dotted path', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'localnet-'));
    dirs.push(dir);
    const file = join(dir, 'genesis.yaml');
    writeFileSync(
      file,
      [
        'chain_id: pocket',
        'params:',
        '  shared:',
        '    num_blocks_per_session: 0',
        '  proof:',
        '    proof_request_probability: 2',
        'suppliers:',
        '  - operator_address: pokt1notanaddress',
        '    stake: 10upokt',
        '    services:',
        '      - service_id: anvil',
        '        endpoints:',
        '          - url: http://127.0.0.1:1',
        '            rpc_type: HTTP',
        'colour: blue',
        '',
      ].join('\n'),
    );
    const err = await runLocalnet(
      { genesis: file, host: '127.0.0.1', port: 0, blockTimeMs: 0 },
      () => undefined,
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GenesisInvalidError);
    expect((err as GenesisInvalidError).code).toBe('LOCALNET_GENESIS_INVALID');
    expect((err as GenesisInvalidError).issues).toEqual([
      {
        path: 'colour',
        message:
          'unknown field; expected one of chain_id, genesis_time, initial_height, min_gas_price_upokt, params, accounts, services, applications, gateways, suppliers',
      },
      { path: 'params.shared.num_blocks_per_session', message: 'expected an integer ≥ 1, got 0' },
      { path: 'params.proof.proof_request_probability', message: 'expected a number between 0 and 1, got 2' },
      {
        path: 'suppliers[0].operator_address',
        message: 'expected a bech32 address with prefix "pokt", got "pokt1notanaddress"',
      },
      {
        path: 'suppliers[0].services[0].endpoints[0].rpc_type',
        message: 'expected one of GRPC, WEBSOCKET, JSON_RPC, REST, COMET_BFT, got "HTTP"',
      },
    ]);
  });

  it('starts from the sample genesis and prints where it listens', async () => {
    const lines: string[] = [];
    const net = await runLocalnet(
      { genesis: 'localnet/genesis.sample.yaml', host: '127.0.0.1', port: 0, blockTimeMs: 0 },
      (l) => lines.push(l),
    );
    try {
      expect(lines).toEqual([
        `localnet chain_id=pocket height=1 rpc=${net.url} websocket=${net.wsUrl} block_time_ms=0`,
      ]);
      const res = await fetch(`${net.url}/status`);
      const body = (await res.json()) as { result: { sync_info: { latest_block_height: string } } };
      expect(body.result.sync_info.latest_block_height).toBe('1');
    } finally {
      await net.stop();
    }
  });
});
