import { describe, expect, it } from 'vitest';
import { bytesToHex, hexToBytes, InvalidInputError } from '../../core/index.js';
import {
  decodeMinedRelayMessage,
  encodeMinedRelayMessage,
  type MinedRelayMessage,
} from './mined-relay-message.js';

const SAMPLE: MinedRelayMessage = {
  relay_hash: new Uint8Array(32).fill(0xab),
  relay_bytes: hexToBytes('0a0212340a00'),
  compute_units_per_relay: 7n,
  session_id: 's1',
  session_end_height: 20,
  supplier_operator_address: 'pokt1sup',
  service_id: 'eth',
  application_address: 'pokt1app',
  arrival_block_height: 15,
  published_at_unix_nano: 1_700_000_000_123_456_789n,
  session_start_height: 11,
};

describe('MinedRelayMessage', () => {
  it('encodes fields in number order with gogoproto tags, and decodes back', () => {
    const bytes = encodeMinedRelayMessage(SAMPLE);
    expect(bytesToHex(bytes)).toBe(
      '0a20' +
        'ab'.repeat(32) +
        '1206' +
        '0a0212340a00' +
        '1807' +
        '22027331' +
        '2814' +
        '3208706f6b7431737570' +
        '3a03657468' +
        '4208706f6b7431617070' +
        '480f' +
        '50' +
        '959a97ece39fe7cb17' +
        '580b',
    );
    expect(decodeMinedRelayMessage(bytes)).toEqual(SAMPLE);
  });

  it('omits zero values and skips unknown fields', () => {
    const empty: MinedRelayMessage = {
      ...SAMPLE,
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
    expect(encodeMinedRelayMessage(empty)).toEqual(new Uint8Array(0));
    expect(decodeMinedRelayMessage(hexToBytes('a0060122027331'))).toEqual({ ...empty, session_id: 's1' });
  });

  it('rejects wrong wire types and truncated input', () => {
    expect(() => decodeMinedRelayMessage(hexToBytes('2002'))).toThrow(InvalidInputError);
    expect(() => decodeMinedRelayMessage(hexToBytes('0a20ab'))).toThrow(InvalidInputError);
  });
});
