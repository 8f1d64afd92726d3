/**
 * A strict protobuf wire-format checker for messages received from the network. The generated
 * decoders are lenient where Go's generated Unmarshal is not (field number 0 ends decoding, a known
 * field with the wrong wire type is skipped, a nested length may run past its parent); running this
 * first makes every input Go would refuse a clean rejection here too.
 *
 * Beyond Go it also refuses: groups (wire types 3/4), a non-repeated message field that occurs twice
 * (Go merges the two, the generated TypeScript keeps only the last), and invalid UTF-8 in string
 * fields. No honest encoder produces any of these.
 */

export type FieldSpec =
  | { name: string; kind: 'varint' | 'fixed64' | 'fixed32' | 'bytes'; repeated?: boolean }
  | { name: string; kind: 'string'; repeated?: boolean }
  | { name: string; kind: 'message'; schema: () => MessageSchema; repeated?: boolean };

export interface MessageSchema {
  name: string;
  fields: Readonly<Record<number, FieldSpec>>;
}

const MAX_DEPTH = 100;
const utf8 = new TextDecoder('utf-8', { fatal: true });

function expectedWireType(spec: FieldSpec): number {
  switch (spec.kind) {
    case 'varint':
      return 0;
    case 'fixed64':
      return 1;
    case 'fixed32':
      return 5;
    default:
      return 2;
  }
}

class WireError extends Error {}

/** Reads a varint of at most 10 bytes ending before `end`; returns [value, nextPos]. */
function readVarint(buf: Uint8Array, pos: number, end: number, what: string): [number, number] {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 10; i++) {
    if (pos >= end) throw new WireError(`${what}: truncated varint`);
    const b = buf[pos++]!;
    // Values past 2^53 lose precision here; they only ever matter as lengths or tags, where
    // anything that large is rejected as running past the input anyway.
    value += (b & 0x7f) * scale;
    scale *= 128;
    if (b < 0x80) return [value, pos];
  }
  throw new WireError(`${what}: varint longer than 10 bytes`);
}

function walk(buf: Uint8Array, start: number, end: number, schema: MessageSchema, depth: number): void {
  if (depth > MAX_DEPTH) throw new WireError(`${schema.name}: nesting deeper than ${MAX_DEPTH}`);
  const seen = new Set<number>();
  let pos = start;
  while (pos < end) {
    const [tag, afterTag] = readVarint(buf, pos, end, `${schema.name}: tag`);
    pos = afterTag;
    const fieldNum = Math.floor(tag / 8);
    const wireType = tag % 8;
    if (fieldNum <= 0 || fieldNum > 536870911) {
      throw new WireError(`${schema.name}: illegal field number ${fieldNum}`);
    }
    const spec = schema.fields[fieldNum];
    if (spec !== undefined && wireType !== expectedWireType(spec)) {
      throw new WireError(`${schema.name}.${spec.name}: wrong wire type ${wireType}`);
    }
    switch (wireType) {
      case 0:
        pos = readVarint(buf, pos, end, `${schema.name}: field ${fieldNum}`)[1];
        break;
      case 1:
        if (pos + 8 > end) throw new WireError(`${schema.name}: field ${fieldNum}: truncated fixed64`);
        pos += 8;
        break;
      case 5:
        if (pos + 4 > end) throw new WireError(`${schema.name}: field ${fieldNum}: truncated fixed32`);
        pos += 4;
        break;
      case 2: {
        const [len, afterLen] = readVarint(buf, pos, end, `${schema.name}: field ${fieldNum} length`);
        if (len > end - afterLen) {
          throw new WireError(`${schema.name}: field ${fieldNum}: length ${len} runs past the message end`);
        }
        const fieldEnd = afterLen + len;
        if (spec?.kind === 'message') {
          if (!spec.repeated && seen.has(fieldNum)) {
            throw new WireError(`${schema.name}.${spec.name}: message field occurs twice`);
          }
          walk(buf, afterLen, fieldEnd, spec.schema(), depth + 1);
        } else if (spec?.kind === 'string') {
          try {
            utf8.decode(buf.subarray(afterLen, fieldEnd));
          } catch {
            throw new WireError(`${schema.name}.${spec.name}: not valid UTF-8`);
          }
        }
        pos = fieldEnd;
        break;
      }
      case 3:
      case 4:
        throw new WireError(`${schema.name}: field ${fieldNum}: groups are not accepted`);
      default:
        throw new WireError(`${schema.name}: field ${fieldNum}: illegal wire type ${wireType}`);
    }
    seen.add(fieldNum);
  }
}

/** null when `buf` is a well-formed encoding of `schema`, else the reason it is not. */
export function checkWireFormat(buf: Uint8Array, schema: MessageSchema): string | null {
  try {
    walk(buf, 0, buf.length, schema, 0);
    return null;
  } catch (err) {
    if (err instanceof WireError) return err.message;
    throw err;
  }
}
