import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { isStreamingContentType, splitLines } from './http-relay.js';

async function lines(chunks: string[], max: number): Promise<string[]> {
  const out: string[] = [];
  for await (const l of splitLines(Readable.from(chunks.map((c) => Buffer.from(c))), max))
    out.push(l.toString());
  return out;
}

describe('isStreamingContentType', () => {
  it('is true only for SSE and NDJSON media types, parameters and case ignored', () => {
    expect(
      [
        'text/event-stream',
        'Text/Event-Stream; charset=utf-8',
        'application/x-ndjson',
        ' application/x-ndjson ;q=1',
        'application/json',
        'text/plain',
        '',
        undefined,
      ].map(isStreamingContentType),
    ).toEqual([true, true, true, true, false, false, false, false]);
  });
});

describe('splitLines', () => {
  it('keeps each newline, joins lines split across chunks, yields a final unterminated line', async () => {
    expect(await lines(['a\nb', 'c\n\nd'], 100)).toEqual(['a\n', 'bc\n', '\n', 'd']);
  });
  it('cuts a line longer than the maximum into maximum-sized pieces', async () => {
    expect(await lines(['abcdefg\nxy'], 3)).toEqual(['abc', 'def', 'g\n', 'xy']);
  });
  it('yields nothing for an empty body', async () => {
    expect(await lines([], 10)).toEqual([]);
  });
});
