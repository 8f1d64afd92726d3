import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createLogger, formatTextLine } from './log.js';

describe('createLogger', () => {
  it('writes JSON lines with the service name and redacts secret-looking fields', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'log-'));
    try {
      const file = join(dir, 'out.log');
      const log = createLogger({ level: 'info', format: 'json', output: file, async: false }, 'relayer');
      log.info({ privateKey: 'aa', nested: { private_key: 'bb', ok: 1 }, password: 'pw' }, 'hello');
      log.debug('hidden');
      await new Promise((r) => setTimeout(r, 20));
      const lines = readFileSync(file, 'utf8').trim().split('\n');
      expect(lines).toHaveLength(1);
      const rec = JSON.parse(lines[0]!) as Record<string, unknown>;
      expect([rec['service'], rec['msg'], rec['privateKey'], rec['nested'], rec['password']]).toEqual([
        'relayer',
        'hello',
        '[redacted]',
        { private_key: '[redacted]', ok: 1 },
        '[redacted]',
      ]);
      expect(readFileSync(file, 'utf8')).not.toMatch(/"aa"|"bb"|"pw"/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('formatTextLine', () => {
  it('renders time, level, message and fields; quotes values with spaces', () => {
    expect(
      formatTextLine(
        JSON.stringify({
          level: 40,
          time: 0,
          pid: 1,
          hostname: 'h',
          msg: 'slow backend',
          service: 'relayer',
          ms: 12,
          why: 'a b',
        }),
      ),
    ).toBe('1970-01-01T00:00:00.000Z WARN slow backend service=relayer ms=12 why="a b"');
  });
  it('passes through a line that is not JSON', () => {
    expect(formatTextLine('not json')).toBe('not json');
  });
});
