/**
 * Wire schemas (field number → kind) of the messages this project decodes from untrusted peers.
 * They mirror the .proto files beside them; a test checks each against the generated code.
 */
import type { MessageSchema } from './wire.js';

export const SESSION_HEADER_SCHEMA: MessageSchema = {
  name: 'SessionHeader',
  fields: {
    1: { name: 'application_address', kind: 'string' },
    2: { name: 'service_id', kind: 'string' },
    3: { name: 'session_id', kind: 'string' },
    4: { name: 'session_start_block_height', kind: 'varint' },
    5: { name: 'session_end_block_height', kind: 'varint' },
  },
};

export const RELAY_REQUEST_METADATA_SCHEMA: MessageSchema = {
  name: 'RelayRequestMetadata',
  fields: {
    1: { name: 'session_header', kind: 'message', schema: () => SESSION_HEADER_SCHEMA },
    2: { name: 'signature', kind: 'bytes' },
    3: { name: 'supplier_operator_address', kind: 'string' },
  },
};

export const RELAY_REQUEST_SCHEMA: MessageSchema = {
  name: 'RelayRequest',
  fields: {
    1: { name: 'meta', kind: 'message', schema: () => RELAY_REQUEST_METADATA_SCHEMA },
    2: { name: 'payload', kind: 'bytes' },
  },
};

export const RELAY_RESPONSE_METADATA_SCHEMA: MessageSchema = {
  name: 'RelayResponseMetadata',
  fields: {
    1: { name: 'session_header', kind: 'message', schema: () => SESSION_HEADER_SCHEMA },
    2: { name: 'supplier_operator_signature', kind: 'bytes' },
  },
};

export const RELAY_MINER_ERROR_SCHEMA: MessageSchema = {
  name: 'RelayMinerError',
  fields: {
    1: { name: 'codespace', kind: 'string' },
    2: { name: 'code', kind: 'varint' },
    3: { name: 'description', kind: 'string' },
    4: { name: 'message', kind: 'string' },
  },
};

export const RELAY_RESPONSE_SCHEMA: MessageSchema = {
  name: 'RelayResponse',
  fields: {
    1: { name: 'meta', kind: 'message', schema: () => RELAY_RESPONSE_METADATA_SCHEMA },
    2: { name: 'payload', kind: 'bytes' },
    3: { name: 'relay_miner_error', kind: 'message', schema: () => RELAY_MINER_ERROR_SCHEMA },
    4: { name: 'payload_hash', kind: 'bytes' },
  },
};

export const RELAY_SCHEMA: MessageSchema = {
  name: 'Relay',
  fields: {
    1: { name: 'req', kind: 'message', schema: () => RELAY_REQUEST_SCHEMA },
    2: { name: 'res', kind: 'message', schema: () => RELAY_RESPONSE_SCHEMA },
  },
};

export const HTTP_HEADER_SCHEMA: MessageSchema = {
  name: 'Header',
  fields: {
    1: { name: 'key', kind: 'string' },
    2: { name: 'values', kind: 'string', repeated: true },
  },
};

const HEADER_MAP_ENTRY_SCHEMA: MessageSchema = {
  name: 'HeaderEntry',
  fields: {
    1: { name: 'key', kind: 'string' },
    2: { name: 'value', kind: 'message', schema: () => HTTP_HEADER_SCHEMA },
  },
};

export const POKT_HTTP_REQUEST_SCHEMA: MessageSchema = {
  name: 'POKTHTTPRequest',
  fields: {
    1: { name: 'method', kind: 'string' },
    2: { name: 'header', kind: 'message', schema: () => HEADER_MAP_ENTRY_SCHEMA, repeated: true },
    3: { name: 'url', kind: 'string' },
    4: { name: 'body_bz', kind: 'bytes' },
  },
};

export const POKT_HTTP_RESPONSE_SCHEMA: MessageSchema = {
  name: 'POKTHTTPResponse',
  fields: {
    1: { name: 'status_code', kind: 'varint' },
    2: { name: 'header', kind: 'message', schema: () => HEADER_MAP_ENTRY_SCHEMA, repeated: true },
    3: { name: 'body_bz', kind: 'bytes' },
  },
};
