/**
 * Lua loader (STYLE.md §9). A script is defined once with its key count; `run` sends EVALSHA and,
 * when the server does not know the SHA (NOSCRIPT: restart, failover, SCRIPT FLUSH), loads the
 * source with SCRIPT LOAD and retries once. Keys always arrive in KEYS, never built in Lua.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';
import { InvalidInputError, RelayMinerError } from '../core/index.js';

export type ScriptArg = string | number | bigint | Buffer;

/** The server refused or failed the script (other than a missing SHA, which is handled). */
export class RedisScriptError extends RelayMinerError {
  constructor(name: string, opts: { cause?: unknown } = {}) {
    const detail = opts.cause instanceof Error ? `: ${opts.cause.message}` : '';
    super('REDIS_SCRIPT_FAILED', `Lua script ${name} failed${detail}`, { ...opts, retryable: true });
  }
}

export class LuaScript<Result = unknown> {
  readonly sha: string;

  constructor(
    readonly name: string,
    readonly source: string,
    readonly numberOfKeys: number,
  ) {
    if (!Number.isInteger(numberOfKeys) || numberOfKeys < 0) {
      throw new InvalidInputError(`Lua script ${name} key count`, `must be a non-negative integer`);
    }
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  /** Runs the script by SHA; loads it and retries once on NOSCRIPT. */
  async run(redis: Redis, keys: readonly string[], args: readonly ScriptArg[] = []): Promise<Result> {
    if (keys.length !== this.numberOfKeys) {
      throw new InvalidInputError(
        `Lua script ${this.name}`,
        `takes ${this.numberOfKeys} keys, got ${keys.length}`,
      );
    }
    const argv = args.map((a) => (typeof a === 'bigint' ? a.toString() : a));
    try {
      return (await redis.evalsha(this.sha, this.numberOfKeys, ...keys, ...argv)) as Result;
    } catch (err) {
      if (!isNoScript(err)) throw new RedisScriptError(this.name, { cause: err });
    }
    try {
      await this.load(redis);
      return (await redis.evalsha(this.sha, this.numberOfKeys, ...keys, ...argv)) as Result;
    } catch (err) {
      throw new RedisScriptError(this.name, { cause: err });
    }
  }

  /** SCRIPT LOAD (e.g. at start-up, so the first call needs no round trip for NOSCRIPT). */
  async load(redis: Redis): Promise<void> {
    const sha = (await redis.script('LOAD', this.source)) as string;
    if (sha !== this.sha) {
      throw new RedisScriptError(this.name, {
        cause: new Error(`server SHA ${sha} differs from local ${this.sha}`),
      });
    }
  }
}

/** Defines a script from its source text and the number of KEYS it takes. */
export function defineScript<Result = unknown>(
  name: string,
  source: string,
  numberOfKeys: number,
): LuaScript<Result> {
  return new LuaScript<Result>(name, source, numberOfKeys);
}

/** Reads a `.lua` file beside its owner: `loadScriptFile(new URL('./lua/x.lua', import.meta.url), 2)`. */
export function loadScriptFile<Result = unknown>(url: URL, numberOfKeys: number): LuaScript<Result> {
  const name = url.pathname.split('/').pop() ?? url.pathname;
  let source: string;
  try {
    source = readFileSync(url, 'utf8');
  } catch (err) {
    throw new RedisScriptError(name, { cause: err });
  }
  return defineScript<Result>(name, source, numberOfKeys);
}

function isNoScript(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('NOSCRIPT');
}
