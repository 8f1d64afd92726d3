/**
 * `pocket-relay-miner stack`: the one-command local stack (localnet, demo backends, Redis,
 * relayers, miners and load). The orchestration that starts them together, drives traffic and
 * prints the summary is not built yet, so it says so and exits with a non-zero status instead of
 * pretending to run.
 */
export function runStack(): number {
  process.stderr.write(
    'pocket-relay-miner stack: not yet available. Its parts run on their own today:\n' +
      '  pocket-relay-miner localnet --genesis localnet/genesis.sample.yaml   chain simulator\n' +
      '  pocket-relay-miner relayer --config <file>                          relayer\n' +
      '  pocket-relay-miner miner --config <file>                            miner\n' +
      '  pocket-relay-miner relay --help                                     PATH-like load client\n' +
      '  npm test                                                            every test, incl. relayer + miner e2e\n',
  );
  return 2;
}
