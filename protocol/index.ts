export * from './hash.js';
export * from './keys.js';
export * from './go-rand.js';
export * from './session.js';
export * from './difficulty.js';
export * from './claim.js';
export * from './relay.js';
export { checkWireFormat, type MessageSchema, type FieldSpec } from './proto/wire.js';
export * as schemas from './proto/schemas.js';
export * as pb from './proto/index.js';
export {
  Relay,
  RelayRequest,
  RelayRequestMetadata,
  RelayResponse,
  RelayResponseMetadata,
  RelayMinerError,
} from './proto/gen/pocket/service/relay.js';
export { SessionHeader, Session } from './proto/gen/pocket/session/types.js';
export { Claim, ClaimProofStatus } from './proto/gen/pocket/proof/types.js';
