/** `redis streams`: the per-supplier relay streams, their consumer groups and recent entries. */
import { decodeMinedRelayMessage } from '../../transport/index.js';
import { formatTable, scanKeys, ttlText, type Out, type RedisCli } from './context.js';

export interface StreamGroup {
  name: string;
  consumers: number;
  pending: number;
  last_delivered_id: string;
  entries_read: number | null;
  lag: number | null;
}

export interface StreamMessage {
  id: string;
  session_id: string;
  service_id: string;
  application_address: string;
  compute_units_per_relay: bigint;
  arrival_block_height: number;
  relay_hash: string;
  error?: string;
}

export interface StreamInfo {
  key: string;
  length: number;
  ttl_seconds: number;
  groups: StreamGroup[];
  /** Newest first, only with `--supplier`. */
  recent?: StreamMessage[];
}

function groupsFrom(raw: unknown): StreamGroup[] {
  if (!Array.isArray(raw)) return [];
  return raw.map((g) => {
    const f: Record<string, unknown> = {};
    const arr = g as unknown[];
    for (let i = 0; i + 1 < arr.length; i += 2) f[String(arr[i])] = arr[i + 1];
    const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
    const text = (v: unknown): string =>
      typeof v === 'string' ? v : Buffer.isBuffer(v) ? v.toString() : v == null ? '' : JSON.stringify(v);
    return {
      name: text(f['name']),
      consumers: Number(f['consumers'] ?? 0),
      pending: Number(f['pending'] ?? 0),
      last_delivered_id: text(f['last-delivered-id']),
      entries_read: num(f['entries-read']),
      lag: num(f['lag']),
    };
  });
}

async function info(cli: RedisCli, key: string): Promise<StreamInfo> {
  const [length, ttl, groups] = await Promise.all([
    cli.redis.xlen(key),
    cli.redis.ttl(key),
    cli.redis.xinfo('GROUPS', key).catch(() => []),
  ]);
  return { key, length, ttl_seconds: ttl, groups: groupsFrom(groups) };
}

export async function allStreams(cli: RedisCli): Promise<StreamInfo[]> {
  const out: StreamInfo[] = [];
  for (const key of await scanKeys(cli.redis, cli.keys.relayStreamPattern())) {
    if ((await cli.redis.type(key)) !== 'stream') continue;
    out.push(await info(cli, key));
  }
  return out;
}

export async function supplierStream(
  cli: RedisCli,
  supplier: string,
  limit: number,
): Promise<StreamInfo | undefined> {
  const key = cli.keys.relayStream(supplier);
  if ((await cli.redis.type(key)) !== 'stream') return undefined;
  const s = await info(cli, key);
  const rows = (limit > 0 ? await cli.redis.xrevrangeBuffer(key, '+', '-', 'COUNT', limit) : []) as [
    Buffer,
    Buffer[],
  ][];
  s.recent = rows.map(([id, fields]) => {
    const data = fields.findIndex((f, i) => i % 2 === 0 && f.toString() === 'data');
    const base = { id: id.toString() };
    try {
      const m = decodeMinedRelayMessage(new Uint8Array(fields[data + 1] ?? Buffer.alloc(0)));
      return {
        ...base,
        session_id: m.session_id,
        service_id: m.service_id,
        application_address: m.application_address,
        compute_units_per_relay: m.compute_units_per_relay,
        arrival_block_height: m.arrival_block_height,
        relay_hash: Buffer.from(m.relay_hash).toString('hex'),
      };
    } catch (err) {
      return {
        ...base,
        session_id: '',
        service_id: '',
        application_address: '',
        compute_units_per_relay: 0n,
        arrival_block_height: 0,
        relay_hash: '',
        error: err instanceof Error ? err.message : String(err),
      };
    }
  });
  return s;
}

function groupRows(streams: readonly StreamInfo[]): unknown[][] {
  return streams.flatMap((s) =>
    s.groups.length === 0
      ? [[s.key, s.length, ttlText(s.ttl_seconds), '(no group)', '', '', '', '']]
      : s.groups.map((g) => [
          s.key,
          s.length,
          ttlText(s.ttl_seconds),
          g.name,
          g.consumers,
          g.pending,
          g.entries_read,
          g.last_delivered_id,
        ]),
  );
}

const HEADERS = ['STREAM', 'LENGTH', 'TTL', 'GROUP', 'CONSUMERS', 'PENDING', 'READ', 'LAST DELIVERED'];

export function printStreams(streams: readonly StreamInfo[], out: Out): void {
  if (streams.length === 0) {
    out('No relay streams\n');
    return;
  }
  out(formatTable(HEADERS, groupRows(streams)));
  for (const s of streams) {
    if (s.recent === undefined) continue;
    if (s.recent.length === 0) {
      out('\nNo entries waiting (consumed entries are acknowledged and deleted)\n');
      continue;
    }
    out('\nRecent entries (newest first)\n');
    out(
      formatTable(
        ['ID', 'SESSION', 'SERVICE', 'APP', 'CUPR', 'ARRIVAL', 'RELAY HASH'],
        s.recent.map((m) =>
          m.error !== undefined
            ? [m.id, `undecodable: ${m.error}`]
            : [
                m.id,
                m.session_id,
                m.service_id,
                m.application_address,
                m.compute_units_per_relay,
                m.arrival_block_height,
                m.relay_hash,
              ],
        ),
      ),
    );
  }
}
