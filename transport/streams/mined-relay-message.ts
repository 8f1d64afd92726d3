/**
 * `pocket.ha.MinedRelayMessage` (upstream transport/mined_relay.pb.go, relayer.md §10): the protobuf
 * value of the `data` field of every relay-stream entry. Encoded like gogoproto Marshal: fields in
 * number order, proto3 zero values omitted, so the Go miner reads our entries and we read its.
 */
import { BinaryReader, BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import { InvalidInputError } from '../../core/index.js';

export interface MinedRelayMessage {
  /** 1: SHA-256 of relay_bytes (32 bytes). */
  relay_hash: Uint8Array;
  /** 2: marshalled pocket.service.Relay. */
  relay_bytes: Uint8Array;
  /** 3: service CUPR at the session start height (uint64). */
  compute_units_per_relay: bigint;
  /** 4 */
  session_id: string;
  /** 5 (int64) */
  session_end_height: number;
  /** 6 */
  supplier_operator_address: string;
  /** 7 */
  service_id: string;
  /** 8 */
  application_address: string;
  /** 9 (int64) */
  arrival_block_height: number;
  /** 10 (int64): set by the publisher when 0. */
  published_at_unix_nano: bigint;
  /** 11 (int64) */
  session_start_height: number;
}

export function encodeMinedRelayMessage(m: MinedRelayMessage): Uint8Array {
  const w = new BinaryWriter();
  if (m.relay_hash.length > 0) w.uint32(10).bytes(m.relay_hash);
  if (m.relay_bytes.length > 0) w.uint32(18).bytes(m.relay_bytes);
  if (m.compute_units_per_relay !== 0n) w.uint32(24).uint64(m.compute_units_per_relay);
  if (m.session_id !== '') w.uint32(34).string(m.session_id);
  if (m.session_end_height !== 0) w.uint32(40).int64(m.session_end_height);
  if (m.supplier_operator_address !== '') w.uint32(50).string(m.supplier_operator_address);
  if (m.service_id !== '') w.uint32(58).string(m.service_id);
  if (m.application_address !== '') w.uint32(66).string(m.application_address);
  if (m.arrival_block_height !== 0) w.uint32(72).int64(m.arrival_block_height);
  if (m.published_at_unix_nano !== 0n) w.uint32(80).int64(m.published_at_unix_nano);
  if (m.session_start_height !== 0) w.uint32(88).int64(m.session_start_height);
  return w.finish();
}

function safeHeight(v: bigint, field: string): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
    throw new InvalidInputError(`MinedRelayMessage.${field}`, 'out of the safe integer range');
  }
  return Number(v);
}

/** Decodes; unknown fields are skipped (forward compatible), malformed bytes throw InvalidInputError. */
export function decodeMinedRelayMessage(bytes: Uint8Array): MinedRelayMessage {
  const m: MinedRelayMessage = {
    relay_hash: new Uint8Array(0),
    relay_bytes: new Uint8Array(0),
    compute_units_per_relay: 0n,
    session_id: '',
    session_end_height: 0,
    supplier_operator_address: '',
    service_id: '',
    application_address: '',
    arrival_block_height: 0,
    published_at_unix_nano: 0n,
    session_start_height: 0,
  };
  try {
    // A plain Uint8Array view, so bytes fields come back as Uint8Array even when given a Buffer.
    const r = new BinaryReader(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    while (r.pos < r.len) {
      const [no, wt] = r.tag();
      const want = no <= 2 || (no >= 4 && no <= 8 && no !== 5) ? WireType.LengthDelimited : WireType.Varint;
      if (no >= 1 && no <= 11 && wt !== want) {
        throw new InvalidInputError('MinedRelayMessage', `field ${no} has wire type ${wt}, expected ${want}`);
      }
      switch (no) {
        case 1:
          m.relay_hash = r.bytes();
          break;
        case 2:
          m.relay_bytes = r.bytes();
          break;
        case 3:
          m.compute_units_per_relay = BigInt(r.uint64());
          break;
        case 4:
          m.session_id = r.string();
          break;
        case 5:
          m.session_end_height = safeHeight(BigInt(r.int64()), 'session_end_height');
          break;
        case 6:
          m.supplier_operator_address = r.string();
          break;
        case 7:
          m.service_id = r.string();
          break;
        case 8:
          m.application_address = r.string();
          break;
        case 9:
          m.arrival_block_height = safeHeight(BigInt(r.int64()), 'arrival_block_height');
          break;
        case 10:
          m.published_at_unix_nano = BigInt(r.int64());
          break;
        case 11:
          m.session_start_height = safeHeight(BigInt(r.int64()), 'session_start_height');
          break;
        default:
          r.skip(wt);
      }
    }
  } catch (err) {
    if (err instanceof InvalidInputError) throw err;
    throw new InvalidInputError('MinedRelayMessage', 'malformed protobuf', { cause: err });
  }
  return m;
}
