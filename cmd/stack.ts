/**
 * `pocket-relay-miner stack`: the one-command local stack (localnet, demo backends, Redis,
 * relayers, miners and load). The orchestration lives in cmd/stack/.
 */
export {
  runStack,
  runStackDetailed,
  TRANSPORTS,
  type StackOptions,
  type StackSummary,
  type StackTransport,
  type TransportSummary,
} from './stack/run.js';
