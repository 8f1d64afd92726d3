/** Shared pieces of the entity definitions. */
import type { KeyBuilder } from '../../transport/index.js';
import { InvalidInputError } from '../../core/index.js';

/** Block time the relayer assumes for TTLs (upstream constant; not read from chain). */
export const BLOCK_TIME_MS = 30_000;

export const SECOND_MS = 1_000;
export const MINUTE_MS = 60 * SECOND_MS;

/** ts-proto encode/decode pair. */
export interface ProtoCodec<T> {
  encode(message: T): { finish(): Uint8Array };
  decode(input: Uint8Array): T;
}

export function protoEncoder<T>(codec: ProtoCodec<T>): (value: T) => Uint8Array {
  return (value) => codec.encode(value).finish();
}

/** Per-entity TTL overrides (config `cache.<entity>`). */
export interface EntityTtlConfig {
  l1_ttl_ms?: number;
  l2_ttl_ms?: number;
}

/** `{service}:{height}` ids (service ids and addresses never contain colons; keys.ts enforces it). */
export interface ServiceAtHeight {
  serviceId: string;
  height: number;
}

export function serviceAtHeightId(a: ServiceAtHeight): string {
  return `${a.serviceId}:${a.height}`;
}

export function parseServiceAtHeightId(id: string): ServiceAtHeight {
  const m = /^([^:]+):(\d+)$/.exec(id);
  if (m === null)
    throw new InvalidInputError('service-at-height cache id', `expected {service}:{height}, got ${id}`);
  return { serviceId: m[1]!, height: Number(m[2]) };
}

export function parseHeightId(id: string): number {
  if (!/^\d+$/.test(id))
    throw new InvalidInputError('height cache id', `expected a decimal height, got ${id}`);
  return Number(id);
}

/** Id of the singleton entries (shared params, proof params). */
export const SINGLETON_ID = 'singleton';

export type KeyFn<A> = (keys: KeyBuilder, args: A) => string;
