import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { bytesToHex, concatBytes } from '../../core/index.js';
import {
  GOB_TYPE_PREFIX,
  InMemoryMapStore,
  SparseMerkleSumTrie,
  compactClosestProof,
  decodeCompactClosestProof,
  encodeCompactClosestProof,
  type CompactClosestProof,
} from './index.js';

/**
 * A minimal gob writer for crafting streams a Go encoder could send: other type ids, other field
 * orders, extra fields.
 */
class W {
  readonly bytes: number[] = [];
  uint(v: number): this {
    if (v < 128) this.bytes.push(v);
    else {
      const b: number[] = [];
      for (let x = v; x > 0; x = Math.floor(x / 256)) b.unshift(x % 256);
      this.bytes.push(256 - b.length, ...b);
    }
    return this;
  }
  int(v: number): this {
    return this.uint(v < 0 ? -2 * v - 1 : 2 * v);
  }
  raw(b: Uint8Array | number[]): this {
    this.bytes.push(...b);
    return this;
  }
  blob(b: Uint8Array): this {
    return this.uint(b.length).raw(b);
  }
  str(s: string): this {
    return this.blob(new TextEncoder().encode(s));
  }
  done(): Uint8Array {
    return Uint8Array.from(this.bytes);
  }
}

function message(body: Uint8Array): Uint8Array {
  return concatBytes(new W().uint(body.length).done(), body);
}

function structDef(id: number, name: string, fields: [string, number][]): Uint8Array {
  const w = new W()
    .int(-id)
    .uint(3)
    .uint(1)
    .uint(1)
    .str(name)
    .uint(1)
    .int(id)
    .uint(0)
    .uint(1)
    .uint(fields.length);
  for (const [n, t] of fields) w.uint(1).str(n).uint(1).int(t).uint(0);
  return message(w.uint(0).uint(0).done());
}

function sliceDef(id: number, elem: number): Uint8Array {
  return message(
    new W()
      .int(-id)
      .uint(2)
      .uint(1)
      .uint(1)
      .str('[][]uint8')
      .uint(1)
      .int(id)
      .uint(0)
      .uint(1)
      .int(elem)
      .uint(0)
      .uint(0)
      .done(),
  );
}

async function sampleProof(): Promise<{ compact: CompactClosestProof; bytes: Uint8Array }> {
  const trie = SparseMerkleSumTrie.create(new InMemoryMapStore());
  for (let i = 0; i < 40; i++) {
    await trie.update(createHash('sha256').update(`k${i}`).digest(), new Uint8Array([i, i]), 5n);
  }
  const path = new Uint8Array(createHash('sha256').update('path').digest());
  const compact = compactClosestProof(await trie.proveClosest(path));
  return { compact, bytes: encodeCompactClosestProof(compact) };
}

/** The value of `compact` as struct `id`, fields written in the order of `order`. */
function valueMessage(
  id: number,
  compact: CompactClosestProof,
  order: string[],
  extra: (w: W, field: string, delta: number) => boolean = () => false,
  innerId = -1,
): Uint8Array {
  const w = new W().int(id);
  let last = -1;
  order.forEach((field, index) => {
    const delta = index - last;
    const write = (fn: () => void): void => {
      w.uint(delta);
      last = index;
      fn();
    };
    if (extra(w, field, delta)) {
      last = index;
      return;
    }
    switch (field) {
      case 'Path':
        write(() => w.blob(compact.path));
        break;
      case 'FlippedBits':
        if (compact.flippedBits.length > 0) {
          write(() => {
            w.uint(compact.flippedBits.length);
            for (const f of compact.flippedBits) w.blob(f);
          });
        }
        break;
      case 'Depth':
        write(() => w.blob(compact.depth));
        break;
      case 'ClosestPath':
        write(() => w.blob(compact.closestPath));
        break;
      case 'ClosestValueHash':
        write(() => w.blob(compact.closestValueHash!));
        break;
      case 'ClosestProof':
        if (innerId >= 0) {
          write(() => {
            const p = compact.closestProof!;
            w.uint(1).uint(p.sideNodes.length);
            for (const s of p.sideNodes) w.blob(s);
            w.uint(2).blob(p.bitMask).uint(1).int(Number(p.numSideNodes));
            if (p.siblingData) w.uint(1).blob(p.siblingData);
            w.uint(0);
          });
        }
        break;
    }
  });
  w.uint(0);
  return message(w.done());
}

describe('gob encoding of compact closest proofs', () => {
  it('round-trips a proof through encode and decode', async () => {
    const { compact, bytes } = await sampleProof();
    expect(decodeCompactClosestProof(bytes)).toEqual(compact);
    expect(bytesToHex(bytes.subarray(0, GOB_TYPE_PREFIX.length))).toBe(bytesToHex(GOB_TYPE_PREFIX));
  });

  it('ignores bytes after the first value', async () => {
    const { compact, bytes } = await sampleProof();
    expect(decodeCompactClosestProof(concatBytes(bytes, new Uint8Array([1, 2, 3, 255])))).toEqual(compact);
  });

  it('decodes any type ids, any field order and skips unknown fields', async () => {
    const { compact } = await sampleProof();
    const stream = concatBytes(
      sliceDef(90, 5),
      // Go would send the nested struct's definition too; field order differs from Go's.
      structDef(91, 'SparseCompactMerkleProof', [
        ['SideNodes', 90],
        ['Unknown', 6],
        ['BitMask', 5],
        ['NumSideNodes', 2],
        ['SiblingData', 5],
      ]),
      structDef(92, 'Renamed', [
        ['Depth', 5],
        ['Extra', 90],
        ['Path', 5],
        ['ClosestPath', 5],
        ['FlippedBits', 90],
        ['ClosestValueHash', 5],
        ['ClosestProof', 91],
      ]),
      valueMessage(
        92,
        compact,
        ['Depth', 'Extra', 'Path', 'ClosestPath', 'FlippedBits', 'ClosestValueHash', 'ClosestProof'],
        (w, field, delta) => {
          if (field !== 'Extra') return false;
          w.uint(delta)
            .uint(2)
            .blob(new Uint8Array([9]))
            .blob(new Uint8Array([8, 8]));
          return true;
        },
        91,
      ),
    );
    expect(decodeCompactClosestProof(stream)).toEqual(compact);
  });

  it('reads a missing nested proof as null', async () => {
    const { compact } = await sampleProof();
    const stream = concatBytes(
      GOB_TYPE_PREFIX,
      valueMessage(65, compact, [
        'Path',
        'FlippedBits',
        'Depth',
        'ClosestPath',
        'ClosestValueHash',
        'ClosestProof',
      ]),
    );
    expect(decodeCompactClosestProof(stream).closestProof).toBeNull();
  });

  const malformed: [string, () => Promise<Uint8Array>][] = [
    ['an empty input', () => Promise.resolve(new Uint8Array(0))],
    ['a stream cut short', async () => (await sampleProof()).bytes.subarray(0, 300)],
    ['type definitions and no value', () => Promise.resolve(GOB_TYPE_PREFIX)],
    ['a definition of a predefined id', () => Promise.resolve(structDef(5, 'X', [['Path', 5]]))],
    [
      'the same id defined twice',
      () =>
        Promise.resolve(concatBytes(structDef(70, 'A', [['Path', 5]]), structDef(70, 'B', [['Path', 5]]))),
    ],
    [
      'a field of the wrong type',
      async () => {
        const { compact } = await sampleProof();
        return concatBytes(structDef(70, 'A', [['Path', 2]]), valueMessage(70, compact, ['Path']));
      },
    ],
    [
      'a struct with no field in common',
      () =>
        Promise.resolve(
          concatBytes(structDef(70, 'A', [['Other', 5]]), message(new W().int(70).uint(0).done())),
        ),
    ],
    ['a value of an undefined type', () => Promise.resolve(message(new W().int(77).uint(0).done()))],
    [
      'an unknown field of an undefined type',
      () =>
        Promise.resolve(
          concatBytes(structDef(70, 'A', [['X', 99]]), message(new W().int(70).uint(0).done())),
        ),
    ],
    ['a zero-length message', () => Promise.resolve(new Uint8Array([0]))],
    ['a uint wider than 8 bytes', () => Promise.resolve(new Uint8Array([0xf0, 1, 2, 3]))],
    [
      'a field number past the struct',
      () => Promise.resolve(concatBytes(GOB_TYPE_PREFIX, message(new W().int(65).uint(9).uint(0).done()))),
    ],
  ];
  for (const [what, make] of malformed) {
    it(`raises SMST_PROOF_MALFORMED for ${what}`, async () => {
      const bytes = await make();
      expect(() => decodeCompactClosestProof(bytes)).toThrow(
        expect.objectContaining({ code: 'SMST_PROOF_MALFORMED' }),
      );
    });
  }
});
