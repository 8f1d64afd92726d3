/** Faults the relayer throws (expected per-relay refusals are values, not these). */
import { RelayMinerError } from '../core/index.js';

/** A Lua script answered something its header does not list: a bug or a foreign script. */
export class MeterScriptReplyError extends RelayMinerError {
  constructor(script: string, reply: unknown) {
    super(
      'METER_SCRIPT_REPLY',
      `${script}: unexpected reply ${JSON.stringify(reply)}; the script and its caller disagree`,
    );
  }
}

/** Chain parameters make the relay cost or budget undefined (e.g. granularity 0). */
export class MeterParamsError extends RelayMinerError {
  constructor(what: string, why: string) {
    super('METER_PARAMS_INVALID', `relay meter: ${what} ${why}`);
  }
}

/** Shared params at a height were not available: the relay cannot be judged (answer 5xx). */
export class SharedParamsUnavailableError extends RelayMinerError {
  constructor(height: number) {
    super(
      'SHARED_PARAMS_UNAVAILABLE',
      `shared params at height ${height} unavailable; cannot check the grace period`,
      {
        retryable: true,
      },
    );
  }
}
