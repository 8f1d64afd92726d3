#!/usr/bin/env node
/**
 * The one CLI: `pocket-relay-miner <command>`. Services and tools register themselves here as
 * subcommands; this file only parses argv and dispatches.
 */
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { Command } from 'commander';
import { VERSION } from '../core/index.js';
import { nativeBindingInfo, selectBackend } from '../rings/index.js';
import { runStack } from './stack.js';
import { registerLocalnetCommand } from './localnet.js';
import { registerRelayerValidateCommand } from './relayer-validate.js';
import { registerRelayerServiceCommand } from './relayer.js';
import { registerMinerServiceCommand } from './miner.js';
import { registerRedisCommand } from './redis/index.js';
import { registerRelayCommand } from './relay/index.js';

export function buildProgram(): Command {
  const program = new Command();
  program
    .enablePositionalOptions()
    .name('pocket-relay-miner')
    .description(
      'Relay miner for Pocket Network (Shannon): stateless relayers serve and sign relays, ' +
        'leader-elected miners build session trees and submit claims and proofs.',
    )
    .version(VERSION, '-v, --version', 'print the version and exit')
    .showHelpAfterError();

  program
    .command('version')
    .description('print the version, Node.js runtime and which EC backend the hot path uses')
    .option('--json', 'machine-readable output')
    .action((opts: { json?: boolean }) => {
      const native = nativeBindingInfo();
      const info = {
        version: VERSION,
        node: process.version,
        platform: `${process.platform}-${process.arch}`,
        ec_backend: selectBackend('auto').name,
        native_secp256k1: native.loaded ? 'loaded' : `unavailable: ${native.reason ?? 'unknown'}`,
      };
      if (opts.json) process.stdout.write(JSON.stringify(info) + '\n');
      else {
        process.stdout.write(
          `pocket-relay-miner ${info.version} (node ${info.node}, ${info.platform})\n` +
            `ec backend: ${info.ec_backend} (native libsecp256k1 ${info.native_secp256k1})\n`,
        );
      }
    });

  program
    .command('stack')
    .description('start the full local stack (localnet, backends, Redis, relayers, miners, load)')
    .option('--keep', 'leave everything running after the summary until Ctrl-C')
    .option('--short', 'smaller load and fewer sessions (CI)')
    .action(async (opts: { keep?: boolean; short?: boolean }) => {
      process.exitCode = await runStack({ keep: opts.keep === true, short: opts.short === true });
    });

  registerLocalnetCommand(program);

  const relayer = program
    .command('relayer')
    .description(
      'the stateless relay service: verifies, meters, forwards, signs and publishes relays ' +
        '(`relayer --config <file>`), or checks a config (`relayer validate --config <file> [--check-stake]`)',
    );
  registerRelayerValidateCommand(relayer);
  registerRelayerServiceCommand(relayer);

  const miner = program
    .command('miner')
    .description(
      'the miner service: consumes relays, builds session trees, claims and proves (`miner --config <file>`)',
    );
  registerMinerServiceCommand(miner);

  registerRedisCommand(program);

  registerRelayCommand(program);

  return program;
}

function isEntryPoint(): boolean {
  const argv1 = process.argv[1];
  if (argv1 === undefined) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(argv1)).href;
  } catch {
    return false;
  }
}
if (isEntryPoint()) {
  await buildProgram().parseAsync(process.argv);
}
