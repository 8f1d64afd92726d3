import { describe, expect, it } from 'vitest';
import { KeyBuilder } from '../transport/index.js';
import { heightInvalidation, jsonInvalidation } from './invalidation.js';
import { pb } from '../protocol/index.js';
import { sessionL2TtlMs } from './entities/session.js';

const keys = new KeyBuilder();

describe('invalidation wire formats', () => {
  it('encodes and decodes upstream JSON payloads', () => {
    const ch = jsonInvalidation('application', 'address').channel(keys);
    expect(ch.name).toBe('ha:events:cache:application:invalidate');
    expect(ch.encode({ id: 'pokt1a' })).toBe('{"address":"pokt1a"}');
    expect(ch.encode({ id: undefined })).toBe('{}');
    expect(ch.decode(Buffer.from('{"address":"pokt1a"}'))).toEqual({ id: 'pokt1a' });
    expect(ch.decode(Buffer.from('{}'))).toEqual({ id: undefined });
    expect(ch.decode(Buffer.from('{"address":""}'))).toEqual({ id: undefined });
    expect(() => ch.decode(Buffer.from('{"address":1}'))).toThrow();
    expect(() => ch.decode(Buffer.from('[]'))).toThrow();
  });

  it('encodes heights as decimal text on the params channel', () => {
    const ch = heightInvalidation().channel(keys);
    expect(ch.name).toBe('ha:events:invalidate:params');
    expect(ch.encode({ id: '42' })).toBe('42');
    expect(ch.decode(Buffer.from('42'))).toEqual({ id: '42' });
    expect(ch.decode(Buffer.from('*'))).toEqual({ id: undefined });
    expect(() => ch.decode(Buffer.from('x'))).toThrow();
  });
});

describe('sessionL2TtlMs', () => {
  const session = (end: bigint): pb.sessionTypes.Session =>
    pb.sessionTypes.Session.fromPartial({ header: { sessionEndBlockHeight: end } });

  it('keeps a session until its end + grace + 2 blocks at 30 s, plus 10 s', () => {
    expect(sessionL2TtlMs(session(8n), 5, 1)).toBe((8 - 5 + 1 + 2) * 30_000 + 10_000);
  });

  it('keeps at least one block', () => {
    expect(sessionL2TtlMs(session(0n), 100, 1)).toBe(30_000 + 10_000);
  });
});
