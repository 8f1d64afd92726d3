import { RelayMinerError } from '../core/index.js';

/** A Redis command of a session trie failed; the unsent batch is kept and resent by the next flush. */
export class SmstRedisError extends RelayMinerError {
  constructor(what: string, nodesKey: string, opts: { cause?: unknown } = {}) {
    super('SMST_REDIS_FAILED', `${what} on ${nodesKey} failed; it is retried by the next flush`, {
      ...opts,
      retryable: true,
    });
  }
}

/** A commit reached a trie that was sealed for its claim. */
export class SmstTreeSealedError extends RelayMinerError {
  constructor(supplier: string, sessionId: string) {
    super(
      'SMST_TREE_SEALED',
      `session ${sessionId} of supplier ${supplier}: the trie is sealed for its claim and takes no more relays`,
    );
  }
}
