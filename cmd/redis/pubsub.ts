/** `redis pubsub`: subscribe to one channel for a while and print what arrives. */
import { RedisCliUsageError, printable, type Out, type RedisCli } from './context.js';
import type { InvalidationType } from '../../transport/index.js';

export interface PubsubMessage {
  received_at: string;
  channel: string;
  payload: string;
}

/** Channel names by short alias, built by the key builder; anything else is used as given. */
export function resolveChannel(cli: RedisCli, name: string): string {
  const k = cli.keys;
  switch (name) {
    case 'blocks':
      return k.blockEventsChannel();
    case 'supplier_update':
      return k.supplierUpdateChannel();
    case 'meter_cleanup':
      return cli.meterKeys.meterCleanupChannel();
    case 'rewardable':
      return k.sessionRewardableChannel();
    case 'params':
      return k.sharedParamsHeightInvalidateChannel();
    case 'supplier_params':
      return k.supplierParamsInvalidateChannel();
    default:
      if (name.startsWith('invalidate:'))
        return k.invalidationChannel(name.slice('invalidate:'.length) as InvalidationType);
      if (name === '') throw new RedisCliUsageError('--channel is required');
      return name;
  }
}

/**
 * Subscribes to `channel` for `seconds` (0 = until `signal` aborts), calling `onMessage` for
 * each message; resolves with every message received.
 */
export async function collectMessages(
  cli: RedisCli,
  channel: string,
  seconds: number,
  onMessage: (m: PubsubMessage) => void = () => undefined,
  o: { signal?: AbortSignal; onSubscribed?: () => void } = {},
): Promise<PubsubMessage[]> {
  const sub = cli.duplicate();
  const got: PubsubMessage[] = [];
  try {
    sub.on('messageBuffer', (ch: Buffer, payload: Buffer) => {
      const m = {
        received_at: new Date().toISOString(),
        channel: ch.toString(),
        payload: printable(payload, 4096),
      };
      got.push(m);
      onMessage(m);
    });
    await sub.subscribe(channel);
    o.onSubscribed?.();
    await new Promise<void>((resolve) => {
      const t = seconds > 0 ? setTimeout(resolve, seconds * 1000) : undefined;
      o.signal?.addEventListener('abort', () => {
        if (t !== undefined) clearTimeout(t);
        resolve();
      });
    });
    await sub.unsubscribe(channel).catch(() => undefined);
  } finally {
    sub.disconnect();
  }
  return got;
}

export function printMessage(m: PubsubMessage, out: Out): void {
  out(`[${m.received_at}] ${m.channel}: ${m.payload}\n`);
}
