/**
 * Faults the simulator raises. Rejected transactions and failed queries are not faults: they are
 * result values carrying the chain's codespace, code and log (see chain-errors.ts).
 */
import { RelayMinerError } from '../core/index.js';

/** One problem found in a genesis file: the dotted path of the field and what was expected. */
export interface GenesisIssue {
  path: string;
  message: string;
}

/** A genesis file that cannot be used; every issue is listed at once. */
export class GenesisInvalidError extends RelayMinerError {
  readonly issues: readonly GenesisIssue[];
  constructor(source: string, issues: readonly GenesisIssue[], opts: { cause?: unknown } = {}) {
    super(
      'LOCALNET_GENESIS_INVALID',
      `genesis ${source}: ${issues.length} problem(s)\n` +
        issues.map((i) => `  ${i.path}: ${i.message}`).join('\n'),
      opts,
    );
    this.issues = issues;
  }
}

/** A chain-state invariant the simulator relies on does not hold (a bug, never bad input). */
export class LocalnetStateError extends RelayMinerError {
  constructor(what: string) {
    super('LOCALNET_STATE_INVALID', `localnet state: ${what}`);
  }
}

/** The RPC server could not start or stop. */
export class LocalnetServerError extends RelayMinerError {
  constructor(what: string, opts: { cause?: unknown } = {}) {
    super('LOCALNET_SERVER_FAILED', `localnet server: ${what}`, opts);
  }
}

/** A test-control request that cannot be honoured (unknown fault, bad height …). */
export class LocalnetControlError extends RelayMinerError {
  constructor(what: string) {
    super('LOCALNET_CONTROL_INVALID', `localnet control: ${what}`);
  }
}
