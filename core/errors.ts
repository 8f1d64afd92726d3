/**
 * Base class of every fault the project throws. Expected rejections on the hot path are values,
 * not exceptions; see STYLE.md §5.
 */
export class RelayMinerError extends Error {
  readonly code: string;
  readonly retryable: boolean;

  constructor(code: string, message: string, opts: { cause?: unknown; retryable?: boolean } = {}) {
    super(message, { cause: opts.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = opts.retryable ?? false;
  }
}

/** True when the error (or anything in its cause chain) says a retry may succeed. */
export function isRetryable(err: unknown): boolean {
  let cur: unknown = err;
  for (let depth = 0; depth < 8 && cur !== undefined && cur !== null; depth++) {
    if (cur instanceof RelayMinerError) return cur.retryable;
    cur = cur instanceof Error ? cur.cause : undefined;
  }
  return false;
}

/** A byte or text input that does not have the shape the caller requires. */
export class InvalidInputError extends RelayMinerError {
  constructor(what: string, why: string, opts: { cause?: unknown } = {}) {
    super('INVALID_INPUT', `${what}: ${why}`, opts);
  }
}
