/**
 * gRPC wire facts shared by every gRPC speaker in the repo (the relayer's gRPC listener, its h2c
 * backend client, the demo backend): length-prefixed message framing
 * (`flags(1) ‖ length(4, big-endian) ‖ message`), the gRPC-Web trailer frame and text (base64)
 * body encoding, `grpc-message` percent-encoding, `grpc-timeout` parsing and the status codes.
 */

/** Canonical gRPC status codes. */
export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

export type GrpcStatusName = keyof typeof GrpcStatus;

const STATUS_NAMES: readonly GrpcStatusName[] = Object.keys(GrpcStatus) as GrpcStatusName[];

/** `PERMISSION_DENIED` for 7; codes outside 0–16 read as `UNKNOWN` (what gRPC clients do). */
export function grpcStatusName(code: number): GrpcStatusName {
  return (Number.isInteger(code) ? STATUS_NAMES[code] : undefined) ?? 'UNKNOWN';
}

/** Bytes before each message: one flag byte and a 4-byte big-endian length. */
export const GRPC_FRAME_HEADER_BYTES = 5;
/** Flag bit: the message is compressed with the call's `grpc-encoding`. */
export const GRPC_FLAG_COMPRESSED = 0x01;
/** Flag bit (gRPC-Web only): the frame carries the trailers, not a message. */
export const GRPC_WEB_FLAG_TRAILERS = 0x80;

/** One length-prefixed gRPC message. */
export function encodeGrpcFrame(message: Uint8Array, compressed = false): Buffer {
  return frameWithFlags(compressed ? GRPC_FLAG_COMPRESSED : 0, message);
}

function frameWithFlags(flags: number, message: Uint8Array): Buffer {
  const out = Buffer.alloc(GRPC_FRAME_HEADER_BYTES + message.length);
  out[0] = flags;
  out.writeUInt32BE(message.length, 1);
  out.set(message, GRPC_FRAME_HEADER_BYTES);
  return out;
}

export interface GrpcFrame {
  compressed: boolean;
  message: Buffer;
}

/** Splits complete frames off the front of `buf`; `rest` is an incomplete tail. */
export function parseGrpcFrames(buf: Buffer): { frames: GrpcFrame[]; rest: Buffer } {
  const frames: GrpcFrame[] = [];
  let off = 0;
  while (buf.length - off >= GRPC_FRAME_HEADER_BYTES) {
    const len = buf.readUInt32BE(off + 1);
    if (buf.length - off - GRPC_FRAME_HEADER_BYTES < len) break;
    const start = off + GRPC_FRAME_HEADER_BYTES;
    frames.push({
      compressed: (buf[off]! & GRPC_FLAG_COMPRESSED) !== 0,
      message: buf.subarray(start, start + len),
    });
    off = start + len;
  }
  return { frames, rest: buf.subarray(off) };
}

/** A frame with its raw flag byte (gRPC-Web trailer frames have bit 0x80 set). */
export interface RawGrpcFrame {
  flags: number;
  message: Buffer;
}

export type GrpcFramePush =
  | { ok: true; frames: RawGrpcFrame[] }
  /** A frame header declared a message longer than the limit; nothing of it was buffered. */
  | { ok: false; code: 'GRPC_FRAME_TOO_LARGE'; declaredBytes: number; maxMessageBytes: number };

/**
 * Incremental frame reader for bodies that arrive in chunks. It refuses a frame as soon as its
 * header declares more than `maxMessageBytes`, so an oversized message is never buffered.
 */
export class GrpcFrameDecoder {
  private pending: Buffer = Buffer.alloc(0);
  private failed = false;

  constructor(private readonly maxMessageBytes: number) {}

  /** Bytes of an incomplete frame held back (0 when the body so far ends on a frame boundary). */
  get pendingBytes(): number {
    return this.pending.length;
  }

  push(chunk: Uint8Array): GrpcFramePush {
    if (this.failed) throw new RangeError('GrpcFrameDecoder used after it refused a frame');
    const buf =
      this.pending.length === 0 ? Buffer.from(chunk) : Buffer.concat([this.pending, Buffer.from(chunk)]);
    const frames: RawGrpcFrame[] = [];
    let off = 0;
    while (buf.length - off >= GRPC_FRAME_HEADER_BYTES) {
      const len = buf.readUInt32BE(off + 1);
      if (len > this.maxMessageBytes) {
        this.failed = true;
        this.pending = Buffer.alloc(0);
        return {
          ok: false,
          code: 'GRPC_FRAME_TOO_LARGE',
          declaredBytes: len,
          maxMessageBytes: this.maxMessageBytes,
        };
      }
      if (buf.length - off - GRPC_FRAME_HEADER_BYTES < len) break;
      const start = off + GRPC_FRAME_HEADER_BYTES;
      frames.push({ flags: buf[off]!, message: Buffer.from(buf.subarray(start, start + len)) });
      off = start + len;
    }
    this.pending = Buffer.from(buf.subarray(off));
    return { ok: true, frames };
  }
}

/* ---------- gRPC-Web ---------- */

/**
 * The gRPC-Web trailer frame: flag 0x80 and `name: value\r\n` lines (names lower-case, in the
 * order given).
 */
export function encodeGrpcWebTrailers(trailers: Readonly<Record<string, string>>): Buffer {
  const text = Object.entries(trailers)
    .map(([k, v]) => `${k.toLowerCase()}: ${v}\r\n`)
    .join('');
  return frameWithFlags(GRPC_WEB_FLAG_TRAILERS, Buffer.from(text, 'latin1'));
}

/** Parses a trailer frame's message (`name: value` lines); names lower-cased, later lines win. */
export function parseGrpcWebTrailers(message: Uint8Array): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of Buffer.from(message).toString('latin1').split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    out[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return out;
}

const BASE64_SEGMENT = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Decodes a `application/grpc-web-text` body: base64 that may be several padded segments
 * concatenated (each message or chunk encoded on its own). Whitespace is ignored. Returns
 * undefined when the text is not base64.
 */
export function decodeGrpcWebText(text: string): Buffer | undefined {
  const clean = text.replace(/\s+/g, '');
  const parts: Buffer[] = [];
  let start = 0;
  while (start < clean.length) {
    let end = clean.indexOf('=', start);
    if (end === -1) end = clean.length;
    else {
      while (end < clean.length && clean[end] === '=') end++;
    }
    const segment = clean.slice(start, end);
    const unpadded = segment.replace(/=+$/, '');
    const padded = segment.length !== unpadded.length;
    if (!BASE64_SEGMENT.test(segment) || unpadded.length % 4 === 1 || (padded && segment.length % 4 !== 0)) {
      return undefined;
    }
    parts.push(Buffer.from(unpadded, 'base64'));
    start = end;
  }
  return Buffer.concat(parts);
}

/* ---------- metadata values ---------- */

/** gRPC `grpc-message` encoding: percent-encode bytes outside 0x20–0x7e and `%`. */
export function encodeGrpcMessage(text: string): string {
  let out = '';
  for (const b of Buffer.from(text, 'utf8')) {
    out +=
      b < 0x20 || b > 0x7e || b === 0x25
        ? `%${b.toString(16).toUpperCase().padStart(2, '0')}`
        : String.fromCharCode(b);
  }
  return out;
}

export function decodeGrpcMessage(text: string): string {
  return Buffer.from(
    text.replace(/%([0-9A-Fa-f]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16))),
    'latin1',
  ).toString('utf8');
}

const TIMEOUT_UNIT_MS: Readonly<Record<string, number>> = {
  H: 3_600_000,
  M: 60_000,
  S: 1000,
  m: 1,
  u: 0.001,
  n: 0.000001,
};

/** `grpc-timeout` (e.g. `100m`, `5S`) in ms; undefined when absent or malformed. */
export function parseGrpcTimeoutMs(value: string | undefined): number | undefined {
  const m = value === undefined ? null : /^(\d{1,8})([HMSmun])$/.exec(value);
  if (!m) return undefined;
  return Number(m[1]) * TIMEOUT_UNIT_MS[m[2]!]!;
}
