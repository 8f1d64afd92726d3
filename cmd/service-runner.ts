/**
 * What every long-running service command does the same way: read and validate its config file
 * (every problem reported with its dotted path), start with a JSON logger, then run until
 * SIGTERM/SIGINT — the first signal stops gracefully, a second one stops at once.
 */
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { ConfigError, type LoggingConfig } from '../core/config/index.js';
import { createLogger } from '../core/index.js';

/** Reads `path` and validates it; unreadable files become a ConfigError too. */
export function readConfigFile<T>(path: string, validate: (text: string, source: string) => T): T {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(path, [
      { path: '', message: `cannot read the file (${(err as NodeJS.ErrnoException).code ?? String(err)})` },
    ]);
  }
  return validate(text, path);
}

export interface ServiceSpec<C extends { logging: LoggingConfig }, R> {
  /** `relayer`, `miner`: the logger's service name and the prefix of start-up errors. */
  name: string;
  load(path: string): C;
  start(cfg: C, log: Logger): Promise<R>;
  /** Graceful stop; resolves to the exit code. */
  stop(running: R): Promise<number>;
  /** Immediate stop on a second signal (default: none, exit at once). */
  abort?(running: R): Promise<void>;
  /** Log line of the first signal, e.g. "draining in-flight relays before exit". */
  stopping: string;
}

/** Runs the service until a signal; returns the process exit code. */
export async function runService<C extends { logging: LoggingConfig }, R>(
  path: string,
  spec: ServiceSpec<C, R>,
): Promise<number> {
  let cfg: C;
  try {
    cfg = spec.load(path);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${err.message}\n`);
    return 1;
  }
  const log = createLogger(cfg.logging, spec.name);
  let running: R;
  try {
    running = await spec.start(cfg, log);
  } catch (err) {
    log.fatal({ err }, `${spec.name} failed to start`);
    process.stderr.write(`${spec.name} failed to start: ${(err as Error).message}\n`);
    return 1;
  }
  return new Promise<number>((resolve) => {
    let signals = 0;
    const onSignal = (sig: NodeJS.Signals): void => {
      signals++;
      if (signals > 1) {
        log.warn({ signal: sig }, 'second signal: stopping at once');
        const abort = spec.abort?.(running) ?? Promise.resolve();
        void abort.finally(() => resolve(130));
        return;
      }
      log.info({ signal: sig }, spec.stopping);
      spec.stop(running).then(resolve, (err: unknown) => {
        log.error({ err }, `${spec.name} stop failed`);
        resolve(1);
      });
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}
