/**
 * A typed channel bus over Redis pub/sub (cache-and-redis.md §4).
 *
 * Publishing goes through the ordinary command connection; receiving needs a connection in
 * subscriber mode, which the caller hands over (`deps.subscriber`) and which the bus owns from
 * then on. After that connection drops and reconnects, every channel is subscribed again
 * (messages published in the gap are lost — pub/sub has no replay) and `onResubscribe` listeners
 * run, so owners can re-read state they may have missed.
 *
 * Channel names come from KeyBuilder. `channel_prefix` is prepended to every name on the wire;
 * Redis pub/sub ignores the selected DB, so tests isolate their channels with it.
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { z } from 'zod';
import { RelayMinerError } from '../core/index.js';

/** How values of one channel become bytes and back. `decode` throws on a malformed payload. */
export interface Channel<T> {
  readonly name: string;
  encode(value: T): Buffer | string;
  decode(payload: Buffer): T;
}

/** A payload that did not decode; handed to the bus's `onDecodeError` (never thrown at a handler). */
export class PubSubPayloadError extends RelayMinerError {
  constructor(channel: string, opts: { cause?: unknown } = {}) {
    super('PUBSUB_PAYLOAD_INVALID', `pub/sub channel ${channel}: payload did not decode`, opts);
  }
}

export class PubSubError extends RelayMinerError {
  constructor(what: string, opts: { cause?: unknown } = {}) {
    super('PUBSUB_FAILED', `pub/sub: ${what} failed`, { ...opts, retryable: true });
  }
}

/** JSON payloads, checked with a zod schema when one is given. */
export function jsonChannel<T>(name: string, schema?: z.ZodType<T>): Channel<T> {
  return {
    name,
    encode: (value) => JSON.stringify(value),
    decode: (payload) => {
      const parsed: unknown = JSON.parse(payload.toString('utf8'));
      return schema === undefined ? (parsed as T) : schema.parse(parsed);
    },
  };
}

/** Raw bytes. */
export function binaryChannel(name: string): Channel<Uint8Array> {
  return {
    name,
    encode: (value) => Buffer.from(value.buffer, value.byteOffset, value.byteLength),
    decode: (payload) => new Uint8Array(payload),
  };
}

/** UTF-8 text (upstream's non-JSON channels: decimal heights, `refresh`, `session|supplier`). */
export function textChannel(name: string): Channel<string> {
  return { name, encode: (value) => value, decode: (payload) => payload.toString('utf8') };
}

export interface PubSubDeps {
  /** Command connection used for PUBLISH (shared with other users). */
  publisher: Redis;
  /** A dedicated connection; the bus puts it in subscriber mode and closes it in `close()`. */
  subscriber: Redis;
  log: Logger;
}

export interface PubSubConfig {
  /** Prepended to every channel name on the wire (tests: their key prefix). */
  channel_prefix?: string;
}

export type Unsubscribe = () => Promise<void>;
type RawHandler = (payload: Buffer) => void;

export class PubSub {
  private readonly prefix: string;
  private readonly handlers = new Map<string, Set<RawHandler>>();
  /** SUBSCRIBE confirmations still pending, so a second subscriber of a new channel waits too. */
  private readonly pending = new Map<string, Promise<void>>();
  private readonly resubscribeListeners = new Set<() => void>();
  private readonly decodeErrorListeners = new Set<(err: PubSubPayloadError) => void>();
  private readonly log: Logger;
  private hasBeenReady: boolean;
  private closed = false;

  constructor(
    private readonly deps: PubSubDeps,
    cfg: PubSubConfig = {},
  ) {
    this.prefix = cfg.channel_prefix ?? '';
    this.log = deps.log.child({ component: 'pubsub' });
    this.hasBeenReady = deps.subscriber.status === 'ready';
    deps.subscriber.on('messageBuffer', this.onMessage);
    deps.subscriber.on('ready', this.onReady);
    deps.subscriber.on('error', this.onError);
  }

  /** The channel name as sent to Redis. */
  wireName(channel: string): string {
    return `${this.prefix}${channel}`;
  }

  /** PUBLISH; resolves to the number of subscribers that received it. */
  async publish<T>(channel: Channel<T>, value: T): Promise<number> {
    try {
      return await this.deps.publisher.publish(this.wireName(channel.name), channel.encode(value));
    } catch (err) {
      throw new PubSubError(`PUBLISH to ${channel.name}`, { cause: err });
    }
  }

  /**
   * Calls `handler` with every decoded message on `channel` until the returned function is called.
   * Resolves once Redis confirmed the subscription.
   */
  async subscribe<T>(channel: Channel<T>, handler: (value: T) => void): Promise<Unsubscribe> {
    if (this.closed) throw new PubSubError(`SUBSCRIBE to ${channel.name} after close`);
    const wire = this.wireName(channel.name);
    const raw: RawHandler = (payload) => {
      let value: T;
      try {
        value = channel.decode(payload);
      } catch (err) {
        this.reportDecodeError(new PubSubPayloadError(channel.name, { cause: err }));
        return;
      }
      handler(value);
    };
    let set = this.handlers.get(wire);
    const isNew = set === undefined;
    if (set === undefined) {
      set = new Set();
      this.handlers.set(wire, set);
    }
    set.add(raw);
    if (isNew) {
      const confirmed = this.deps.subscriber.subscribe(wire).then(() => undefined);
      this.pending.set(wire, confirmed);
      try {
        await confirmed;
      } catch (err) {
        set.delete(raw);
        if (set.size === 0) this.handlers.delete(wire);
        throw new PubSubError(`SUBSCRIBE to ${channel.name}`, { cause: err });
      } finally {
        this.pending.delete(wire);
      }
    } else {
      await this.pending.get(wire)?.catch(() => undefined);
    }
    return async () => {
      const current = this.handlers.get(wire);
      if (current === undefined || !current.delete(raw) || current.size > 0) return;
      this.handlers.delete(wire);
      if (!this.closed) await this.deps.subscriber.unsubscribe(wire).catch(() => undefined);
    };
  }

  /** Runs after every reconnect, once the channels are subscribed again. */
  onResubscribe(listener: () => void): () => void {
    this.resubscribeListeners.add(listener);
    return () => this.resubscribeListeners.delete(listener);
  }

  /** Receives payloads that failed to decode (the handler is not called for them). */
  onDecodeError(listener: (err: PubSubPayloadError) => void): () => void {
    this.decodeErrorListeners.add(listener);
    return () => this.decodeErrorListeners.delete(listener);
  }

  /** Wire names currently subscribed. */
  channels(): string[] {
    return [...this.handlers.keys()];
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.handlers.clear();
    const sub = this.deps.subscriber;
    sub.off('messageBuffer', this.onMessage);
    sub.off('ready', this.onReady);
    await sub.quit().catch(() => sub.disconnect());
    sub.off('error', this.onError);
  }

  private readonly onMessage = (channel: Buffer, payload: Buffer): void => {
    const set = this.handlers.get(channel.toString('utf8'));
    if (set === undefined) return;
    for (const handler of [...set]) {
      try {
        handler(payload);
      } catch (err) {
        this.log.error({ err, channel: channel.toString('utf8') }, 'pub/sub handler threw');
      }
    }
  };

  private readonly onReady = (): void => {
    if (!this.hasBeenReady) {
      this.hasBeenReady = true;
      return;
    }
    void this.resubscribe();
  };

  private readonly onError = (err: unknown): void => {
    // ioredis reconnects by itself; this only keeps the error from being unhandled.
    this.log.debug({ err }, 'pub/sub connection error');
  };

  private async resubscribe(): Promise<void> {
    const wire = [...this.handlers.keys()];
    if (this.closed) return;
    try {
      // ioredis may already have re-sent SUBSCRIBE (autoResubscribe); SUBSCRIBE is idempotent.
      if (wire.length > 0) await this.deps.subscriber.subscribe(...wire);
    } catch (err) {
      this.log.warn({ err }, 'pub/sub resubscribe failed; retrying on the next reconnect');
      return;
    }
    this.log.info({ channels: wire.length }, 'pub/sub resubscribed after reconnect');
    for (const listener of [...this.resubscribeListeners]) {
      try {
        listener();
      } catch (err) {
        this.log.error({ err }, 'pub/sub resubscribe listener threw');
      }
    }
  }

  private reportDecodeError(err: PubSubPayloadError): void {
    if (this.decodeErrorListeners.size === 0) {
      this.log.warn({ err }, 'dropped undecodable pub/sub payload');
      return;
    }
    for (const listener of [...this.decodeErrorListeners]) listener(err);
  }
}
