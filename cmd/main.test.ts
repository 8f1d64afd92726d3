import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { VERSION } from '../core/index.js';
import { buildProgram } from './main.js';

describe('pocket-relay-miner CLI', () => {
  it('reports the package.json version', () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    expect(VERSION).toBe(pkg.version);
  });

  it('version --json prints the version and runtime', async () => {
    const out: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = (chunk: string) => {
      out.push(chunk);
      return true;
    };
    try {
      await buildProgram().parseAsync(['node', 'pocket-relay-miner', 'version', '--json']);
    } finally {
      process.stdout.write = write;
    }
    expect(JSON.parse(out.join(''))).toEqual({
      version: VERSION,
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
      ec_backend: 'native',
      native_secp256k1: 'loaded',
    });
  });

  it('rejects an unknown command with an error instead of running anything', async () => {
    const program = buildProgram()
      .exitOverride()
      .configureOutput({ writeErr: () => undefined });
    await expect(program.parseAsync(['node', 'pocket-relay-miner', 'no-such-command'])).rejects.toMatchObject(
      {
        code: 'commander.unknownCommand',
      },
    );
  });
});
