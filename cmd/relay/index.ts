/** What the rest of cmd/ uses from the relay client. */
export {
  registerRelayCommand,
  runRelay,
  parseRelayOptions,
  type RelayCliOptions,
  type RelayIo,
  type RelayReport,
} from './cli.js';
export { RelayClient, runSubscription, type RelayOutcome } from './client.js';
export { runLoad, summarize, type LoadSummary } from './load.js';
export { EXIT, SessionResolver, ChainRingSource } from './session.js';
