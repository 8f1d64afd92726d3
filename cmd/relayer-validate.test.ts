import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterAll, describe, expect, it } from 'vitest';
import { registerRelayerValidateCommand, runRelayerValidate } from './relayer-validate.js';

const dir = mkdtempSync(join(tmpdir(), 'relayer-validate-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(path: string): { code: number; out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  const code = runRelayerValidate(path, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out, err };
}

describe('relayer validate', () => {
  it('accepts the shipped example', () => {
    const p = join(import.meta.dirname, '..', 'config.relayer.example.yaml');
    expect(run(p)).toEqual({
      code: 0,
      out: [`${p}: valid (4 services: develop-http, develop-websocket, develop-stream, develop-grpc)`],
      err: [],
    });
  });

  it('lists every problem and exits 1', () => {
    const p = join(dir, 'bad.yaml');
    writeFileSync(
      p,
      'listen_addr: nowhere\nservices: {}\npocket_node: {query_node_rpc_url: a, query_node_grpc_url: b}\n',
    );
    expect(run(p)).toEqual({
      code: 1,
      out: [],
      err: [`${p}: 1 problem:\n  - listen_addr: must be host:port, e.g. 0.0.0.0:8080`],
    });
  });

  it('exits 2 on an unreadable file', () => {
    const p = join(dir, 'missing.yaml');
    expect(run(p)).toEqual({ code: 2, out: [], err: [`${p}: cannot read the file (ENOENT)`] });
  });

  it('registers as `relayer validate --config`', () => {
    const program = new Command();
    const cmd = registerRelayerValidateCommand(program.command('relayer'));
    expect(cmd.name()).toBe('validate');
    expect(cmd.options.map((o) => o.long)).toEqual(['--config', '--check-stake', '--node']);
  });
});
