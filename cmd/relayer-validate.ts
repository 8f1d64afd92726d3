/**
 * `pocket-relay-miner relayer validate --config <file>`: runs exactly the function the relayer
 * runs at start-up (validateRelayerConfig) and prints every problem with its dotted path.
 * Exit codes: 0 valid, 1 invalid, 2 unreadable file.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import pino from 'pino';
import { ConfigError } from '../core/config/index.js';
import { ChainQueryClient, loadSupplierKeys } from '../chain/index.js';
import { addressFromPrivateKey } from '../protocol/index.js';
import { checkStakes, validateRelayerConfig, type StakedSupplier } from '../relayer/index.js';

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

/**
 * `--check-stake`: the config must be valid, then every held supplier key's on-chain stake is
 * compared with the configured backends. Exit codes: 0 consistent (warnings allowed), 1 invalid
 * config or a staked transport without a backend, 2 unreadable file, 3 chain unreachable.
 */
export async function runRelayerCheckStake(path: string, io: ValidateOutput, node?: string): Promise<number> {
  const code = runRelayerValidate(path, io);
  if (code !== 0) return code;
  const cfg = validateRelayerConfig(readFileSync(path, 'utf8'), path);
  let addresses: string[];
  try {
    addresses = loadSupplierKeys(cfg.keys).map((k) => addressFromPrivateKey(k));
  } catch (err) {
    io.err(`${path}: ${(err as Error).message}`);
    return 1;
  }
  if (addresses.length === 0) {
    io.err(
      `${path}: no supplier key loaded (keys.keys_file / keys.keys_dir); nothing to check against the chain`,
    );
    return 1;
  }
  const url = node ?? cfg.pocket_node.query_node_rpc_url;
  const chain = new ChainQueryClient(
    { log: pino({ level: 'silent' }) },
    { query_node_rpc_url: url, max_retries: 1 },
  );
  const suppliers: StakedSupplier[] = [];
  try {
    for (const a of addresses) {
      const s = await chain.getSupplier(a);
      suppliers.push({
        operatorAddress: a,
        services: s.services.map((svc) => ({
          serviceId: svc.serviceId,
          endpoints: svc.endpoints.map((e) => ({ rpcType: e.rpcType })),
        })),
      });
    }
  } catch (err) {
    io.err(`${url}: cannot read supplier stakes: ${(err as Error).message}`);
    return 3;
  } finally {
    chain.close();
  }
  const report = checkStakes(cfg, suppliers);
  for (const e of report.errors) io.err(`error: ${e}`);
  for (const w of report.warnings) io.err(`warning: ${w}`);
  for (const u of report.unmappable) io.err(`debug: unmappable staked RPC type ${u}`);
  io.out(
    `${path}: stakes of ${addresses.length} supplier${addresses.length === 1 ? '' : 's'} checked: ${report.errors.length} error(s), ${report.warnings.length} warning(s)`,
  );
  return report.errors.length > 0 ? 1 : 0;
}

/** Adds `validate` under the given `relayer` command. */
export function registerRelayerValidateCommand(relayer: Command): Command {
  return relayer
    .command('validate')
    .description('check a relayer config file with the same rules the relayer applies at start-up')
    .requiredOption('-c, --config <file>', 'relayer YAML config')
    .option('--check-stake', "also compare the suppliers' on-chain stakes with the configured backends")
    .option('--node <url>', 'CometBFT RPC URL for --check-stake (default: pocket_node.query_node_rpc_url)')
    .action(async (opts: { config: string; checkStake?: boolean; node?: string }) => {
      const io: ValidateOutput = {
        out: (l) => process.stdout.write(`${l}\n`),
        err: (l) => process.stderr.write(`${l}\n`),
      };
      process.exitCode =
        opts.checkStake === true
          ? await runRelayerCheckStake(opts.config, io, opts.node)
          : runRelayerValidate(opts.config, io);
    });
}
