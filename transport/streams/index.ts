/** Relay streams: the MinedRelayMessage wire format and the publisher. */
export {
  decodeMinedRelayMessage,
  encodeMinedRelayMessage,
  type MinedRelayMessage,
} from './mined-relay-message.js';
export { StreamPublisherMetrics } from './metrics.js';
export {
  DEFAULT_STREAM_PUBLISHER_CONFIG,
  StreamPublisher,
  type PublishResult,
  type StreamPublisherConfig,
  type StreamPublisherDeps,
  type WriteOutcome,
} from './publisher.js';
