/**
 * The process logger: pino JSON lines (or a `time LEVEL msg k=v` text form) to stderr, stdout or
 * a file, per the `logging:` config section. Fields that could carry secrets are redacted.
 */
import { Writable } from 'node:stream';
import pino, { type DestinationStream, type Logger } from 'pino';
import type { LoggingConfig } from './config/index.js';

/** Field names never written as they are, wherever they appear (one level of nesting). */
const SECRET_FIELDS = [
  'privateKey',
  'private_key',
  'privKey',
  // keys_dir files and the gateway signing options name their key fields these ways.
  'private_key_hex',
  'privateKeyHex',
  'signerPrivateKey',
  'secret',
  'password',
  'mnemonic',
  'authorization',
];
const REDACT = [...SECRET_FIELDS, ...SECRET_FIELDS.map((f) => `*.${f}`)];

const LEVEL_NAMES: Readonly<Record<number, string>> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};

function textValue(v: unknown): string {
  if (typeof v === 'string') return /[\s"=]/.test(v) ? JSON.stringify(v) : v;
  return JSON.stringify(v);
}

/** One JSON log line as `2026-01-02T03:04:05.678Z INFO message key=value …`. */
export function formatTextLine(json: string): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const { time, level, msg, pid: _pid, hostname: _host, ...rest } = rec;
  const t = typeof time === 'number' ? new Date(time).toISOString() : textValue(time ?? '');
  const lvl = LEVEL_NAMES[Number(level)] ?? String(level);
  const fields = Object.entries(rest).map(([k, v]) => `${k}=${textValue(v)}`);
  return [t, lvl, typeof msg === 'string' ? msg : textValue(msg ?? ''), ...fields].join(' ');
}

class TextDestination extends Writable {
  private pending = '';
  constructor(private readonly out: DestinationStream) {
    super();
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.pending += chunk.toString('utf8');
    let nl: number;
    while ((nl = this.pending.indexOf('\n')) !== -1) {
      this.out.write(`${formatTextLine(this.pending.slice(0, nl))}\n`);
      this.pending = this.pending.slice(nl + 1);
    }
    cb();
  }
}

/** A logger for a process named `name` (the `service` field of every line). */
export function createLogger(
  cfg: Pick<LoggingConfig, 'level' | 'format' | 'output' | 'async'>,
  name: string,
): Logger {
  const dest =
    cfg.output === 'stdout'
      ? pino.destination({ fd: 1, sync: !cfg.async })
      : cfg.output === 'stderr'
        ? pino.destination({ fd: 2, sync: !cfg.async })
        : pino.destination({ dest: cfg.output, sync: !cfg.async, mkdir: true });
  const stream = cfg.format === 'text' ? new TextDestination(dest) : dest;
  return pino(
    {
      level: cfg.level,
      base: { service: name },
      redact: { paths: REDACT, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.epochTime,
    },
    stream,
  );
}
