import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { parseGoDurationMs } from './duration.js';
import { ConfigError, dottedPath } from './issues.js';
import { deepFreeze, loadConfigText } from './load.js';
import { loggingSection, metricsSection, namespaceSection, redisSection } from './sections.js';

describe('parseGoDurationMs', () => {
  it('reads Go duration syntax', () => {
    expect(['2h', '1h30m', '100ms', '1.5s', '0', '90s', '1m0.5s', '500us'].map(parseGoDurationMs)).toEqual([
      7_200_000, 5_400_000, 100, 1_500, 0, 90_000, 60_500, 0.5,
    ]);
  });
  it('refuses anything else', () => {
    expect(['', '2', 'h', '-1s', '2 h', '1d', '1h ', 'soon'].map(parseGoDurationMs)).toEqual(
      Array(8).fill(undefined),
    );
  });
});

describe('dottedPath', () => {
  it('writes keys with dots and indices in brackets', () => {
    expect(dottedPath(['services', 'eth', 'backends', 'jsonrpc', 'urls', 2, 'url'])).toBe(
      'services.eth.backends.jsonrpc.urls[2].url',
    );
  });
});

describe('shared sections', () => {
  const schema = z.strictObject({
    redis: redisSection,
    logging: loggingSection,
    metrics: metricsSection('0.0.0.0:9092'),
  });

  it('fill every default, field by field (namespace base only keeps the rest)', () => {
    const cfg = loadConfigText('redis: { namespace: { base_prefix: prod } }\n', { schema });
    expect(cfg.redis.namespace).toEqual({ ...namespaceSection.parse({}), base_prefix: 'prod' });
    expect(cfg.metrics).toEqual({ enabled: true, addr: '0.0.0.0:9092' });
    expect(cfg.logging.level).toBe('info');
    expect(Object.isFrozen(cfg.redis.namespace)).toBe(true);
  });

  it('run cross checks only after the schema passed and report them together', () => {
    const crossCheck = (c: z.output<typeof schema>, issues: { add(p: string, m: string): void }) => {
      if (c.metrics.enabled && c.metrics.addr.endsWith(':6379'))
        issues.add('metrics.addr', 'clashes with redis');
      if (c.logging.level === 'trace') issues.add('logging.level', 'trace is too verbose here');
    };
    let err: unknown;
    try {
      loadConfigText('metrics: { addr: "0.0.0.0:6379" }\nlogging: { level: trace }\n', {
        schema,
        crossCheck,
        source: 'x.yaml',
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).issues).toEqual([
      { path: 'metrics.addr', message: 'clashes with redis' },
      { path: 'logging.level', message: 'trace is too verbose here' },
    ]);
    expect((err as ConfigError).message).toBe(
      'x.yaml: 2 problems:\n  - metrics.addr: clashes with redis\n  - logging.level: trace is too verbose here',
    );
  });
});

describe('deepFreeze', () => {
  it('freezes nested objects and arrays', () => {
    const v = deepFreeze({ a: { b: [1, { c: 2 }] } });
    expect([Object.isFrozen(v.a), Object.isFrozen(v.a.b), Object.isFrozen(v.a.b[1])]).toEqual([
      true,
      true,
      true,
    ]);
  });
});
