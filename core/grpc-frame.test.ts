import { describe, expect, it } from 'vitest';
import {
  GrpcFrameDecoder,
  GrpcStatus,
  decodeGrpcMessage,
  decodeGrpcWebText,
  encodeGrpcFrame,
  encodeGrpcMessage,
  encodeGrpcWebTrailers,
  grpcStatusName,
  parseGrpcFrames,
  parseGrpcTimeoutMs,
  parseGrpcWebTrailers,
} from './grpc-frame.js';

const b = (...bytes: number[]): Buffer => Buffer.from(bytes);

describe('length-prefixed frames', () => {
  it('encodes flag, big-endian length and message', () => {
    expect(encodeGrpcFrame(b(0xaa, 0xbb))).toEqual(b(0, 0, 0, 0, 2, 0xaa, 0xbb));
    expect(encodeGrpcFrame(b(7), true)).toEqual(b(1, 0, 0, 0, 1, 7));
    expect(encodeGrpcFrame(new Uint8Array())).toEqual(b(0, 0, 0, 0, 0));
    expect(encodeGrpcFrame(Buffer.alloc(0x010203)).subarray(0, 5)).toEqual(b(0, 0, 0x01, 0x02, 0x03));
  });

  it('splits complete frames and keeps an incomplete tail', () => {
    const two = Buffer.concat([encodeGrpcFrame(b(1)), encodeGrpcFrame(b(2, 3), true), b(0, 0, 0)]);
    expect(parseGrpcFrames(two)).toEqual({
      frames: [
        { compressed: false, message: b(1) },
        { compressed: true, message: b(2, 3) },
      ],
      rest: b(0, 0, 0),
    });
    expect(parseGrpcFrames(b(0, 0, 0, 0, 5, 1, 2))).toEqual({ frames: [], rest: b(0, 0, 0, 0, 5, 1, 2) });
    expect(parseGrpcFrames(Buffer.alloc(0))).toEqual({ frames: [], rest: Buffer.alloc(0) });
  });
});

describe('GrpcFrameDecoder', () => {
  it('reassembles frames split at every byte boundary', () => {
    const wire = Buffer.concat([encodeGrpcFrame(b(1, 2, 3)), encodeGrpcWebTrailers({ 'grpc-status': '0' })]);
    for (let cut = 0; cut <= wire.length; cut++) {
      const d = new GrpcFrameDecoder(100);
      const a = d.push(wire.subarray(0, cut));
      const c = d.push(wire.subarray(cut));
      if (!a.ok || !c.ok) throw new Error('refused');
      expect([...a.frames, ...c.frames]).toEqual([
        { flags: 0, message: b(1, 2, 3) },
        { flags: 0x80, message: Buffer.from('grpc-status: 0\r\n') },
      ]);
      expect(d.pendingBytes).toBe(0);
    }
  });

  it('refuses a frame whose header declares more than the limit, before its body arrives', () => {
    const d = new GrpcFrameDecoder(10);
    expect(d.push(b(0, 0, 0))).toEqual({ ok: true, frames: [] });
    expect(d.pendingBytes).toBe(3);
    expect(d.push(b(0, 11))).toEqual({
      ok: false,
      code: 'GRPC_FRAME_TOO_LARGE',
      declaredBytes: 11,
      maxMessageBytes: 10,
    });
    expect(() => d.push(b(0))).toThrow(RangeError);
  });

  it('accepts a message of exactly the limit', () => {
    const d = new GrpcFrameDecoder(3);
    expect(d.push(encodeGrpcFrame(b(1, 2, 3)))).toEqual({
      ok: true,
      frames: [{ flags: 0, message: b(1, 2, 3) }],
    });
  });

  it('refuses the second frame when only it is too large', () => {
    const d = new GrpcFrameDecoder(2);
    expect(d.push(Buffer.concat([encodeGrpcFrame(b(1)), b(0, 0, 0, 0, 3)]))).toEqual({
      ok: false,
      code: 'GRPC_FRAME_TOO_LARGE',
      declaredBytes: 3,
      maxMessageBytes: 2,
    });
  });

  it('returned frames do not alias the caller buffer', () => {
    const wire = encodeGrpcFrame(b(9));
    const d = new GrpcFrameDecoder(10);
    const r = d.push(wire);
    wire[5] = 0;
    expect(r.ok && r.frames[0]!.message).toEqual(b(9));
  });
});

describe('gRPC-Web trailers', () => {
  it('encodes a 0x80 frame of name: value lines', () => {
    expect(encodeGrpcWebTrailers({ 'Grpc-Status': '3', 'grpc-message': 'bad%20input' })).toEqual(
      Buffer.concat([b(0x80, 0, 0, 0, 43), Buffer.from('grpc-status: 3\r\ngrpc-message: bad%20input\r\n')]),
    );
    expect(encodeGrpcWebTrailers({})).toEqual(b(0x80, 0, 0, 0, 0));
  });

  it('parses trailer lines, lower-casing names and skipping lines without a name', () => {
    expect(
      parseGrpcWebTrailers(Buffer.from('Grpc-Status: 14\r\ngrpc-message:  down \r\n: x\r\nnocolon\nx-a:1\n')),
    ).toEqual({ 'grpc-status': '14', 'grpc-message': 'down', 'x-a': '1' });
    expect(parseGrpcWebTrailers(new Uint8Array())).toEqual({});
  });
});

describe('decodeGrpcWebText', () => {
  it('decodes one segment, with and without padding, ignoring whitespace', () => {
    expect(decodeGrpcWebText('AAECAw==')).toEqual(b(0, 1, 2, 3));
    expect(decodeGrpcWebText('AAEC')).toEqual(b(0, 1, 2));
    expect(decodeGrpcWebText('AAE')).toEqual(b(0, 1));
    expect(decodeGrpcWebText(' AA\r\nEC ')).toEqual(b(0, 1, 2));
    expect(decodeGrpcWebText('')).toEqual(Buffer.alloc(0));
  });

  it('decodes several padded segments concatenated', () => {
    expect(decodeGrpcWebText('AAE=AA==AAEC')).toEqual(b(0, 1, 0, 0, 1, 2));
  });

  it('refuses text that is not base64', () => {
    for (const bad of ['!!!!', 'A', 'AAAAA', 'AA=', 'AAA===', '=AAA', 'AA-_', 'AA=A']) {
      expect([bad, decodeGrpcWebText(bad)]).toEqual([bad, undefined]);
    }
  });
});

describe('grpc-message', () => {
  it('percent-encodes %, controls and non-ASCII, and decodes back', () => {
    expect(encodeGrpcMessage('a%b\n')).toBe('a%25b%0A');
    expect(encodeGrpcMessage('ü ok')).toBe('%C3%BC ok');
    for (const text of ['', 'plain', 'down 100% ünïcode\t\r\n', '日本']) {
      expect(decodeGrpcMessage(encodeGrpcMessage(text))).toBe(text);
    }
  });

  it('leaves malformed escapes as they are', () => {
    expect(decodeGrpcMessage('%zz%4')).toBe('%zz%4');
  });
});

describe('grpc-timeout', () => {
  it('parses every unit', () => {
    expect(['2H', '2M', '1S', '250m', '5u', '7n'].map((v) => parseGrpcTimeoutMs(v))).toEqual([
      7_200_000, 120_000, 1000, 250, 0.005, 0.000007,
    ]);
    expect(parseGrpcTimeoutMs('99999999S')).toBe(99_999_999_000);
  });

  it('refuses absent and malformed values', () => {
    for (const bad of [undefined, '', 'x', '1', 'S', '-1S', '1.5S', '123456789S', '1s', ' 1S']) {
      expect([bad, parseGrpcTimeoutMs(bad)]).toEqual([bad, undefined]);
    }
  });
});

describe('status codes', () => {
  it('names every code and reads unknown ones as UNKNOWN', () => {
    expect(Object.values(GrpcStatus)).toEqual([...Array(17).keys()]);
    expect([0, 7, 8, 12, 14, 16].map(grpcStatusName)).toEqual([
      'OK',
      'PERMISSION_DENIED',
      'RESOURCE_EXHAUSTED',
      'UNIMPLEMENTED',
      'UNAVAILABLE',
      'UNAUTHENTICATED',
    ]);
    expect([17, -1, 1.5, NaN].map(grpcStatusName)).toEqual(['UNKNOWN', 'UNKNOWN', 'UNKNOWN', 'UNKNOWN']);
  });
});
