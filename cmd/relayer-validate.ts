/**
 * `pocket-relay-miner relayer validate --config <file>`: runs exactly the function the relayer
 * runs at start-up (validateRelayerConfig) and prints every problem with its dotted path.
 * Exit codes: 0 valid, 1 invalid, 2 unreadable file.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { ConfigError } from '../core/config/index.js';
import { validateRelayerConfig } from '../relayer/index.js';

export interface ValidateOutput {
  out: (line: string) => void;
  err: (line: string) => void;
}

/** Validates the file; returns the process exit code. */
export function runRelayerValidate(path: string, io: ValidateOutput): number {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    io.err(`${path}: cannot read the file (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
    return 2;
  }
  try {
    const cfg = validateRelayerConfig(text, path);
    const services = Object.keys(cfg.services);
    io.out(
      `${path}: valid (${services.length} service${services.length === 1 ? '' : 's'}: ${services.join(', ')})`,
    );
    return 0;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    io.err(err.message);
    return 1;
  }
}

/** Adds `validate` under the given `relayer` command. */
export function registerRelayerValidateCommand(relayer: Command): Command {
  return relayer
    .command('validate')
    .description('check a relayer config file with the same rules the relayer applies at start-up')
    .requiredOption('-c, --config <file>', 'relayer YAML config')
    .action((opts: { config: string }) => {
      process.exitCode = runRelayerValidate(opts.config, {
        out: (l) => process.stdout.write(`${l}\n`),
        err: (l) => process.stderr.write(`${l}\n`),
      });
    });
}
