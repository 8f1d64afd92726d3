/**
 * ABCI events as a Cosmos SDK chain emits them. Typed events (EmitTypedEvent) carry one attribute
 * per proto field: the key is the proto field name and the value its proto-JSON encoding, so
 * strings are quoted, 64-bit integers are quoted decimals and 32-bit integers are bare numbers.
 */
export interface AbciEventAttribute {
  key: string;
  value: string;
  index?: boolean;
}

export interface AbciEvent {
  type: string;
  attributes: AbciEventAttribute[];
}

function jsonValue(v: unknown): string {
  if (typeof v === 'bigint') return JSON.stringify(v.toString());
  return JSON.stringify(v);
}

/** A typed event: `fields` maps proto field names to values (bigint = int64/uint64). */
export function typedEvent(type: string, fields: Record<string, unknown>): AbciEvent {
  return {
    type,
    attributes: Object.entries(fields).map(([key, value]) => ({ key, value: jsonValue(value), index: true })),
  };
}

/** A plain (untyped) event with string attributes. */
export function plainEvent(type: string, attrs: readonly (readonly [string, string])[]): AbciEvent {
  return { type, attributes: attrs.map(([key, value]) => ({ key, value, index: true })) };
}

/** Reads the proto-JSON value of a typed event attribute back. */
export function attributeValue(event: AbciEvent, key: string): unknown {
  const a = event.attributes.find((x) => x.key === key);
  return a === undefined ? undefined : JSON.parse(a.value);
}
