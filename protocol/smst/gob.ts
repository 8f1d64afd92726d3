/**
 * Go `encoding/gob` for the one value the chain reads: SparseCompactMerkleClosestProof
 * (spec smst.md §8 "Serialization").
 *
 * Encoding reproduces a fresh Go encoder byte for byte: the three type definitions with ids
 * 65/66/67, then the value. Decoding is a gob decoder for this value as Go's would run it: it
 * reads whatever type definitions the stream carries (any ids), matches struct fields by name,
 * skips fields it does not know, checks wire-type compatibility and stops after the first value
 * (trailing bytes are ignored). Everything that makes Go's decoder fail raises
 * SmstProofMalformedError. Interface-typed fields are the one gob feature left out: a stream
 * that uses them is refused rather than skipped.
 */
import { concatBytes } from '../../core/index.js';
import { copyBytes } from './encoding.js';
import { SmstProofMalformedError } from './errors.js';
import type { CompactClosestProof, CompactMerkleProof } from './proof.js';

// Predefined gob type ids.
const T_BOOL = 1;
const T_INT = 2;
const T_UINT = 3;
const T_FLOAT = 4;
const T_BYTES = 5;
const T_STRING = 6;
const T_COMPLEX = 7;
const T_INTERFACE = 8;
const T_COMMON_TYPE = 18;
const T_FIELD_TYPE = 21;
const FIRST_USER_ID = 64;

/** Go's sanity bound on lengths and counts (64-bit build): 8 GiB. */
const TOO_BIG = 1n << 33n;
/** Size of a Go slice header, the element size Go checks `[][]byte` counts against. */
const SLICE_HEADER_BYTES = 24n;
/** Nesting limit for structs inside the value; far beyond any honest proof. */
const MAX_NESTING = 100;

const CLOSEST_PROOF_ID = 65;
const BYTES_SLICE_ID = 66;
const MERKLE_PROOF_ID = 67;

// ---------------------------------------------------------------------------------------------
// Encoding

class GobWriter {
  private readonly parts: number[] = [];

  uint(v: number | bigint): this {
    let x = BigInt(v);
    if (x < 128n) {
      this.parts.push(Number(x));
      return this;
    }
    const bytes: number[] = [];
    while (x > 0n) {
      bytes.unshift(Number(x & 0xffn));
      x >>= 8n;
    }
    this.parts.push(256 - bytes.length, ...bytes);
    return this;
  }

  int(v: number | bigint): this {
    const x = BigInt(v);
    return this.uint(x < 0n ? (-x << 1n) - 1n : x << 1n);
  }

  bytes(b: Uint8Array): this {
    this.uint(b.length);
    for (const x of b) this.parts.push(x);
    return this;
  }

  string(s: string): this {
    return this.bytes(new TextEncoder().encode(s));
  }

  raw(b: Uint8Array): this {
    for (const x of b) this.parts.push(x);
    return this;
  }

  toBytes(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

/** A gob message: uint(length) ‖ body. */
function message(body: Uint8Array): Uint8Array {
  return concatBytes(new GobWriter().uint(body.length).toBytes(), body);
}

/** The CommonType struct {Name, Id}; the caller has written the field delta that leads to it. */
function commonType(w: GobWriter, name: string, id: number): void {
  w.uint(1).string(name).uint(1).int(id).uint(0);
}

function structTypeDefinition(id: number, name: string, fields: readonly [string, number][]): Uint8Array {
  const w = new GobWriter().int(-id);
  w.uint(3); // wireType.StructT
  w.uint(1);
  commonType(w, name, id);
  w.uint(1).uint(fields.length);
  for (const [fieldName, fieldId] of fields) w.uint(1).string(fieldName).uint(1).int(fieldId).uint(0);
  w.uint(0); // end structType
  w.uint(0); // end wireType
  return message(w.toBytes());
}

function sliceTypeDefinition(id: number, name: string, elem: number): Uint8Array {
  const w = new GobWriter().int(-id);
  w.uint(2); // wireType.SliceT
  w.uint(1);
  commonType(w, name, id);
  w.uint(1).int(elem);
  w.uint(0); // end sliceType
  w.uint(0); // end wireType
  return message(w.toBytes());
}

/** The type definitions a fresh Go encoder sends before the first proof (287 bytes). */
export const GOB_TYPE_PREFIX: Uint8Array = concatBytes(
  structTypeDefinition(CLOSEST_PROOF_ID, 'SparseCompactMerkleClosestProof', [
    ['Path', T_BYTES],
    ['FlippedBits', BYTES_SLICE_ID],
    ['Depth', T_BYTES],
    ['ClosestPath', T_BYTES],
    ['ClosestValueHash', T_BYTES],
    ['ClosestProof', MERKLE_PROOF_ID],
  ]),
  sliceTypeDefinition(BYTES_SLICE_ID, '[][]uint8', T_BYTES),
  structTypeDefinition(MERKLE_PROOF_ID, 'SparseCompactMerkleProof', [
    ['SideNodes', BYTES_SLICE_ID],
    ['NonMembershipLeafData', T_BYTES],
    ['BitMask', T_BYTES],
    ['NumSideNodes', T_INT],
    ['SiblingData', T_BYTES],
  ]),
);

/** Writes the struct fields gob sends: zero values (empty slices, 0, nil) are left out. */
class StructWriter {
  private last = -1;

  constructor(private readonly w: GobWriter) {}

  private field(index: number): GobWriter {
    const delta = index - this.last;
    this.last = index;
    return this.w.uint(delta);
  }

  bytes(index: number, b: Uint8Array | null): void {
    if (b !== null && b.length > 0) this.field(index).bytes(b);
  }

  bytesList(index: number, list: readonly Uint8Array[]): void {
    if (list.length === 0) return;
    const w = this.field(index).uint(list.length);
    for (const b of list) w.bytes(b);
  }

  int(index: number, v: bigint): void {
    if (v !== 0n) this.field(index).int(v);
  }

  struct(index: number, write: (s: StructWriter) => void): void {
    this.field(index);
    const inner = new StructWriter(this.w);
    write(inner);
    inner.end();
  }

  end(): void {
    this.w.uint(0);
  }
}

/** The gob bytes of a compact closest proof from a fresh encoder (MsgSubmitProof.proof). */
export function encodeCompactClosestProof(proof: CompactClosestProof): Uint8Array {
  const w = new GobWriter().int(CLOSEST_PROOF_ID);
  const s = new StructWriter(w);
  s.bytes(0, proof.path);
  s.bytesList(1, proof.flippedBits);
  s.bytes(2, proof.depth);
  s.bytes(3, proof.closestPath);
  s.bytes(4, proof.closestValueHash);
  const inner = proof.closestProof;
  if (inner !== null) {
    s.struct(5, (p) => {
      p.bytesList(0, inner.sideNodes);
      p.bytes(1, inner.nonMembershipLeafData);
      p.bytes(2, inner.bitMask);
      p.int(3, inner.numSideNodes);
      p.bytes(4, inner.siblingData);
    });
  }
  s.end();
  return concatBytes(GOB_TYPE_PREFIX, message(w.toBytes()));
}

// ---------------------------------------------------------------------------------------------
// Decoding

function malformed(why: string): SmstProofMalformedError {
  return new SmstProofMalformedError(why);
}

/** A window [off, end) of the input: one gob message. */
class Reader {
  constructor(
    readonly data: Uint8Array,
    public off: number,
    readonly end: number,
  ) {}

  get remaining(): number {
    return this.end - this.off;
  }

  uint(): bigint {
    if (this.off >= this.end) throw malformed('unexpected EOF');
    const c = this.data[this.off++]!;
    if (c <= 0x7f) return BigInt(c);
    const n = 256 - c;
    if (n > 8) throw malformed('encoded unsigned integer out of range');
    if (this.remaining < n) {
      throw malformed(`invalid uint data length ${n}: exceeds input size ${this.remaining}`);
    }
    let x = 0n;
    for (let i = 0; i < n; i++) x = (x << 8n) | BigInt(this.data[this.off + i]!);
    this.off += n;
    return x;
  }

  /** Go int64 from the zig-zag uint. */
  int(): bigint {
    const x = this.uint();
    return x & 1n ? ~(x >> 1n) : x >> 1n;
  }

  /** A length that must fit the rest of the message (Go getLength). */
  length(what: string): number {
    const n = BigInt.asIntN(64, this.uint());
    if (n < 0n || BigInt(this.remaining) < n || n >= TOO_BIG) throw malformed(`bad ${what} length ${n}`);
    return Number(n);
  }

  /** Drops `n` bytes the caller has checked are there. */
  skip(n: number): void {
    this.off += n;
  }

  take(n: number): Uint8Array {
    const out = copyBytes(this.data, this.off, this.off + n);
    this.off += n;
    return out;
  }
}

/** Runs Go's struct loop: `onField` gets each field number present, in order. */
function walkStruct(r: Reader, fieldCount: number, onField: (index: number) => void): void {
  let fieldnum = -1;
  while (r.remaining > 0) {
    const delta = BigInt.asIntN(64, r.uint());
    if (delta < 0n) throw malformed('corrupted data: negative field delta');
    if (delta === 0n) return;
    if (BigInt(fieldnum) >= BigInt(fieldCount) - delta) throw malformed('field numbers out of bounds');
    fieldnum += Number(delta);
    onField(fieldnum);
  }
}

interface WireField {
  name: string;
  id: number;
}

/** A remote type definition; Go lets several of the kinds be set at once. */
interface WireType {
  array?: { elem: number; len: bigint };
  slice?: { elem: number };
  struct?: { name: string; fields: WireField[] };
  map?: { key: number; elem: number };
  /** GobEncoder, BinaryMarshaler or TextMarshaler: sent as length-prefixed bytes. */
  external: boolean;
}

function readTypeId(r: Reader, what: string): number {
  const v = r.int();
  if (v < -(1n << 31n) || v >= 1n << 31n) throw malformed(`value for "${what}" out of range`);
  return Number(v);
}

function readString(r: Reader): string {
  return new TextDecoder().decode(r.take(r.length('string')));
}

function readCommonType(r: Reader): string {
  let name = '';
  walkStruct(r, 2, (i) => {
    if (i === 0) name = readString(r);
    else readTypeId(r, 'Id');
  });
  return name;
}

function readFieldType(r: Reader): WireField {
  const f: WireField = { name: '', id: 0 };
  walkStruct(r, 2, (i) => {
    if (i === 0) f.name = readString(r);
    else f.id = readTypeId(r, 'Id');
  });
  return f;
}

function readWireType(r: Reader): WireType {
  const wire: WireType = { external: false };
  walkStruct(r, 7, (i) => {
    switch (i) {
      case 0: {
        const a = { elem: 0, len: 0n };
        walkStruct(r, 3, (j) => {
          if (j === 0) readCommonType(r);
          else if (j === 1) a.elem = readTypeId(r, 'Elem');
          else a.len = r.int();
        });
        wire.array = a;
        break;
      }
      case 1: {
        const s = { elem: 0 };
        walkStruct(r, 2, (j) => {
          if (j === 0) readCommonType(r);
          else s.elem = readTypeId(r, 'Elem');
        });
        wire.slice = s;
        break;
      }
      case 2: {
        const s = { name: '', fields: [] as WireField[] };
        walkStruct(r, 2, (j) => {
          if (j === 0) {
            s.name = readCommonType(r);
            return;
          }
          const u = r.uint();
          if (BigInt.asIntN(64, u) < 0n || u * 8n > TOO_BIG) throw malformed(`field list too big: ${u}`);
          const fields: WireField[] = [];
          for (let k = 0n; k < u; k++) {
            if (r.remaining === 0) throw malformed('decoding slice: length exceeds input size');
            fields.push(readFieldType(r));
          }
          s.fields = fields;
        });
        wire.struct = s;
        break;
      }
      case 3: {
        const m = { key: 0, elem: 0 };
        walkStruct(r, 3, (j) => {
          if (j === 0) readCommonType(r);
          else if (j === 1) m.key = readTypeId(r, 'Key');
          else m.elem = readTypeId(r, 'Elem');
        });
        wire.map = m;
        break;
      }
      default:
        walkStruct(r, 1, () => readCommonType(r));
        wire.external = true;
    }
  });
  return wire;
}

type FieldKind = 'bytes' | 'bytesList' | 'int' | 'merkleProof';
type Target = 'closest' | 'merkle';

const TARGET_FIELDS: Record<Target, Record<string, FieldKind>> = {
  closest: {
    Path: 'bytes',
    FlippedBits: 'bytesList',
    Depth: 'bytes',
    ClosestPath: 'bytes',
    ClosestValueHash: 'bytes',
    ClosestProof: 'merkleProof',
  },
  merkle: {
    SideNodes: 'bytesList',
    NonMembershipLeafData: 'bytes',
    BitMask: 'bytes',
    NumSideNodes: 'int',
    SiblingData: 'bytes',
  },
};

/** Fields of the two predefined struct types Go can decode into a local struct. */
const BUILTIN_STRUCTS: ReadonlyMap<number, WireField[]> = new Map([
  [
    T_COMMON_TYPE,
    [
      { name: 'Name', id: T_STRING },
      { name: 'Id', id: T_INT },
    ],
  ],
  [
    T_FIELD_TYPE,
    [
      { name: 'Name', id: T_STRING },
      { name: 'Id', id: T_INT },
    ],
  ],
]);

type Instruction = { kind: 'ignore'; id: number } | { kind: FieldKind; name: string; engine?: Engine };

interface Engine {
  instructions: Instruction[];
  matched: number;
}

interface DecodedStruct {
  [name: string]: Uint8Array | Uint8Array[] | bigint | DecodedStruct | undefined;
}

/** Compiles and runs a decode against the type definitions read from one stream. */
class ValueDecoder {
  private readonly engines = new Map<string, Engine>();
  private readonly ignorable = new Set<number>();

  constructor(private readonly types: ReadonlyMap<number, WireType>) {}

  private isExternal(id: number): boolean {
    return this.types.get(id)?.external === true;
  }

  private compatible(kind: FieldKind, id: number): boolean {
    if (this.isExternal(id)) return false;
    switch (kind) {
      case 'bytes':
        return id === T_BYTES;
      case 'int':
        return id === T_INT;
      case 'bytesList': {
        const slice = this.types.get(id)?.slice;
        return slice !== undefined && slice.elem === T_BYTES;
      }
      case 'merkleProof':
        return true;
    }
  }

  /** Mirrors Go's decIgnoreOpFor: every type a skipped field can hold must be decodable. */
  private checkIgnorable(id: number): void {
    if (id >= T_BOOL && id <= T_COMPLEX) return;
    if (id === T_INTERFACE) throw malformed('interface-typed fields are not supported');
    if (this.ignorable.has(id)) return;
    this.ignorable.add(id);
    const wire = this.types.get(id);
    if (wire === undefined) throw malformed(`bad data: undefined type ${id}`);
    if (wire.array !== undefined) this.checkIgnorable(wire.array.elem);
    else if (wire.map !== undefined) {
      this.checkIgnorable(wire.map.key);
      this.checkIgnorable(wire.map.elem);
    } else if (wire.slice !== undefined) this.checkIgnorable(wire.slice.elem);
    else if (wire.struct !== undefined) {
      for (const f of wire.struct.fields) {
        if (f.name === '') throw malformed(`empty name for remote field of type ${wire.struct.name}`);
        this.checkIgnorable(f.id);
      }
    } else if (!wire.external) throw malformed(`bad data: ignore can't handle type ${id}`);
  }

  engine(id: number, target: Target): Engine {
    const key = `${target}:${id}`;
    const cached = this.engines.get(key);
    if (cached !== undefined) return cached;
    let fields: WireField[] | undefined;
    if (id < FIRST_USER_ID) {
      fields = BUILTIN_STRUCTS.get(id);
      if (fields === undefined) throw malformed(`type mismatch: want struct, got predefined type ${id}`);
    } else {
      const wire = this.types.get(id);
      if (wire === undefined) throw malformed('unknown type id or corrupted data');
      fields = wire.struct?.fields;
      if (fields === undefined) throw malformed(`type mismatch: want struct, got type ${id}`);
    }
    const engine: Engine = { instructions: [], matched: 0 };
    this.engines.set(key, engine);
    const local = TARGET_FIELDS[target];
    for (const f of fields) {
      if (f.name === '') throw malformed(`empty name for remote field of type ${id}`);
      const kind = Object.hasOwn(local, f.name) ? local[f.name] : undefined;
      if (kind === undefined) {
        this.checkIgnorable(f.id);
        engine.instructions.push({ kind: 'ignore', id: f.id });
        continue;
      }
      if (!this.compatible(kind, f.id)) throw malformed(`wrong type for received field ${f.name}`);
      const instruction: Instruction = { kind, name: f.name };
      if (kind === 'merkleProof') instruction.engine = this.engine(f.id, 'merkle');
      engine.instructions.push(instruction);
      engine.matched++;
    }
    return engine;
  }

  decodeStruct(r: Reader, engine: Engine, into: DecodedStruct, depth: number): void {
    if (depth > MAX_NESTING) throw malformed('structs nested too deeply');
    walkStruct(r, engine.instructions.length, (i) => {
      const ins = engine.instructions[i]!;
      switch (ins.kind) {
        case 'ignore':
          this.skip(r, ins.id, depth + 1);
          break;
        case 'bytes':
          into[ins.name] = r.take(r.length('[]uint8'));
          break;
        case 'bytesList': {
          const u = r.uint();
          if (BigInt.asIntN(64, u) < 0n || u * SLICE_HEADER_BYTES > TOO_BIG) {
            throw malformed(`[]uint8 slice too big: ${u} elements`);
          }
          const list: Uint8Array[] = [];
          for (let k = 0n; k < u; k++) {
            if (r.remaining === 0) throw malformed('decoding slice: length exceeds input size');
            list.push(r.take(r.length('[]uint8')));
          }
          into[ins.name] = list;
          break;
        }
        case 'int':
          into[ins.name] = r.int();
          break;
        case 'merkleProof': {
          const existing = into[ins.name];
          const nested: DecodedStruct =
            existing !== undefined && !(existing instanceof Uint8Array) && !Array.isArray(existing)
              ? (existing as DecodedStruct)
              : {};
          into[ins.name] = nested;
          this.decodeStruct(r, ins.engine!, nested, depth + 1);
          break;
        }
      }
    });
  }

  /** Go's ignore ops: read a value of wire type `id` and drop it. */
  private skip(r: Reader, id: number, depth: number): void {
    if (depth > MAX_NESTING) throw malformed('values nested too deeply');
    switch (id) {
      case T_BOOL:
      case T_INT:
      case T_UINT:
      case T_FLOAT:
        r.uint();
        return;
      case T_BYTES:
      case T_STRING:
        r.skip(r.length('slice'));
        return;
      case T_COMPLEX:
        r.uint();
        r.uint();
        return;
    }
    const wire = this.types.get(id)!;
    if (wire.array !== undefined) {
      const { elem, len } = wire.array;
      if (r.uint() !== BigInt.asUintN(64, len)) throw malformed('length mismatch in array');
      for (let k = 0n; k < len; k++) {
        if (r.remaining === 0) throw malformed('decoding array: length exceeds input size');
        this.skip(r, elem, depth + 1);
      }
    } else if (wire.map !== undefined) {
      const { key, elem } = wire.map;
      const n = BigInt.asIntN(64, r.uint());
      for (let k = 0n; k < n; k++) {
        if (r.remaining === 0) {
          // Struct ops read nothing from an empty buffer; any other op fails on it.
          if (this.isStruct(key) && this.isStruct(elem)) return;
          throw malformed('unexpected EOF in map');
        }
        this.skip(r, key, depth + 1);
        this.skip(r, elem, depth + 1);
      }
    } else if (wire.slice !== undefined) {
      const n = BigInt.asIntN(64, r.uint());
      for (let k = 0n; k < n; k++) {
        if (r.remaining === 0) throw malformed('decoding slice: length exceeds input size');
        this.skip(r, wire.slice.elem, depth + 1);
      }
    } else if (wire.struct !== undefined) {
      const fields = wire.struct.fields;
      walkStruct(r, fields.length, (i) => this.skip(r, fields[i]!.id, depth + 1));
    } else {
      r.skip(r.length('GobDecoder data'));
    }
  }

  private isStruct(id: number): boolean {
    return id >= FIRST_USER_ID && this.types.get(id)?.struct !== undefined && !this.isArrayMapOrSlice(id);
  }

  private isArrayMapOrSlice(id: number): boolean {
    const w = this.types.get(id);
    return w !== undefined && (w.array !== undefined || w.map !== undefined || w.slice !== undefined);
  }
}

/** Reads a count the way Go reads message lengths and type ids from the stream. */
function readStreamUint(data: Uint8Array, off: number, end: number): { value: bigint; next: number } {
  if (off >= end) throw malformed('EOF');
  const c = data[off]!;
  if (c <= 0x7f) return { value: BigInt(c), next: off + 1 };
  const n = 256 - c;
  if (n > 8) throw malformed('encoded unsigned integer out of range');
  if (end - off - 1 < n) throw malformed('unexpected EOF');
  let x = 0n;
  for (let i = 1; i <= n; i++) x = (x << 8n) | BigInt(data[off + i]!);
  return { value: x, next: off + 1 + n };
}

function nullIfEmpty(v: unknown): Uint8Array | null {
  return v instanceof Uint8Array && v.length > 0 ? v : null;
}

function bytesOrEmpty(v: unknown): Uint8Array {
  return v instanceof Uint8Array ? v : new Uint8Array(0);
}

function toMerkleProof(s: DecodedStruct): CompactMerkleProof {
  return {
    sideNodes: Array.isArray(s['SideNodes']) ? s['SideNodes'] : [],
    nonMembershipLeafData: nullIfEmpty(s['NonMembershipLeafData']),
    bitMask: bytesOrEmpty(s['BitMask']),
    numSideNodes: typeof s['NumSideNodes'] === 'bigint' ? s['NumSideNodes'] : 0n,
    siblingData: nullIfEmpty(s['SiblingData']),
  };
}

/**
 * Decodes proof bytes as the chain's `Unmarshal` does: the first value of the stream, any type
 * ids, trailing bytes ignored. Empty byte fields come back empty or null, like Go's nil slices.
 */
export function decodeCompactClosestProof(bytes: Uint8Array): CompactClosestProof {
  if (bytes.length === 0) throw malformed('closest merkle proof cannot be empty');
  const types = new Map<number, WireType>();
  let pos = 0;
  for (;;) {
    if (pos >= bytes.length) throw malformed(types.size > 0 ? 'unexpected EOF' : 'EOF');
    const count = readStreamUint(bytes, pos, bytes.length);
    if (count.value >= TOO_BIG) throw malformed('invalid message length');
    const length = Number(count.value);
    if (bytes.length - count.next < length) throw malformed('unexpected EOF');
    const r = new Reader(bytes, count.next, count.next + length);
    pos = count.next + length;

    const head = readStreamUint(bytes, r.off, r.end);
    r.off = head.next;
    const x = head.value;
    const id = Number(BigInt.asIntN(32, x & 1n ? ~(x >> 1n) : x >> 1n));
    if (id >= 0) {
      const decoder = new ValueDecoder(types);
      const engine = decoder.engine(id, 'closest');
      const wire = id >= FIRST_USER_ID ? types.get(id) : undefined;
      if (engine.matched === 0 && wire?.struct !== undefined && wire.struct.fields.length > 0) {
        throw malformed('type mismatch: no fields matched compiling decoder');
      }
      const out: DecodedStruct = {};
      decoder.decodeStruct(r, engine, out, 0);
      const inner = out['ClosestProof'];
      return {
        path: bytesOrEmpty(out['Path']),
        flippedBits: Array.isArray(out['FlippedBits']) ? out['FlippedBits'] : [],
        depth: bytesOrEmpty(out['Depth']),
        closestPath: bytesOrEmpty(out['ClosestPath']),
        closestValueHash: nullIfEmpty(out['ClosestValueHash']),
        closestProof:
          inner !== undefined &&
          !(inner instanceof Uint8Array) &&
          !Array.isArray(inner) &&
          typeof inner !== 'bigint'
            ? toMerkleProof(inner)
            : null,
      };
    }
    const typeId = Number(BigInt.asIntN(32, BigInt(-id)));
    if (typeId < FIRST_USER_ID || types.has(typeId)) throw malformed('duplicate type received');
    types.set(typeId, readWireType(r));
    if (r.remaining > 0) throw malformed('extra data in buffer');
  }
}
