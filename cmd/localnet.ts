/**
 * `pocket-relay-miner localnet`: the local Pocket chain simulator (CometBFT JSON-RPC over HTTP
 * and websocket on loopback) started from a genesis file.
 */
import { type Command, InvalidArgumentError } from 'commander';
import { RelayMinerError } from '../core/index.js';
import { loadGenesisFile, startLocalnet, type Localnet } from '../localnet/index.js';

export interface LocalnetCliOptions {
  genesis: string;
  host: string;
  port: number;
  blockTimeMs: number;
}

function nonNegativeInt(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) {
      throw new InvalidArgumentError(`${name} must be a non-negative integer, got "${value}"`);
    }
    return n;
  };
}

/** Starts the simulator from CLI options; resolves once it is listening. */
export async function runLocalnet(
  opts: LocalnetCliOptions,
  out: (line: string) => void = (l) => process.stdout.write(l + '\n'),
): Promise<Localnet> {
  const genesis = loadGenesisFile(opts.genesis);
  const net = await startLocalnet(genesis, {
    host: opts.host,
    port: opts.port,
    blockTimeMs: opts.blockTimeMs,
  });
  out(
    `localnet chain_id=${genesis.chain_id} height=${net.chain.height} rpc=${net.url} websocket=${net.wsUrl} ` +
      `block_time_ms=${opts.blockTimeMs}`,
  );
  return net;
}

/** Registers `localnet` on the program. */
export function registerLocalnetCommand(program: Command): Command {
  return program
    .command('localnet')
    .description(
      'run the local Pocket chain simulator: CometBFT JSON-RPC (HTTP and /websocket) on loopback, ' +
        'abci_query for the pocket and cosmos queries, real tx verification, claims, proofs and settlement',
    )
    .requiredOption('-g, --genesis <file>', 'genesis file (YAML or JSON); see localnet/genesis.sample.yaml')
    .option('--host <address>', 'address to listen on (loopback only unless you mean otherwise)', '127.0.0.1')
    .option('-p, --port <port>', 'RPC port; 0 picks a free port', nonNegativeInt('--port'), 26657)
    .option(
      '-b, --block-time-ms <ms>',
      'milliseconds between blocks; 0 disables the timer (blocks only via the localnet_advance RPC method)',
      nonNegativeInt('--block-time-ms'),
      1000,
    )
    .action(async (opts: LocalnetCliOptions) => {
      let net: Localnet;
      try {
        net = await runLocalnet(opts);
      } catch (err) {
        if (err instanceof RelayMinerError) {
          process.stderr.write(`pocket-relay-miner localnet: ${err.message}\n`);
          process.exitCode = 2;
          return;
        }
        throw err;
      }
      const stop = (): void => {
        void net.stop().then(() => process.exit(0));
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
}
