/** What cmd/ and tests may use from localnet/ (never imported by production code). */
export {
  LocalChain,
  sessionParamsOf,
  type BlockRecord,
  type IndexedTx,
  type TxResult,
  type Account,
} from './chain.js';
export { startLocalnet, type Localnet, type LocalnetOptions } from './localnet.js';
export { RpcServer } from './rpc-server.js';
export { abciQuery, QUERY_PATHS, type QueryAnswer } from './abci-query.js';
export { loadGenesisFile, parseGenesis, RPC_TYPES, type Genesis } from './genesis.js';
export { PROOF, SDK, SESSION, type ChainError } from './chain-errors.js';
export { attributeValue, type AbciEvent } from './events.js';
export { MSG_CREATE_CLAIM, MSG_SUBMIT_PROOF, decodeTx, txHash } from './tx.js';
export {
  GenesisInvalidError,
  LocalnetControlError,
  LocalnetServerError,
  LocalnetStateError,
  type GenesisIssue,
} from './errors.js';
