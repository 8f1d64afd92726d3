/**
 * New blocks from a CometBFT node: a websocket subscription to `tm.event='NewBlockHeader'` tells
 * which heights exist; each height is then read over HTTP `/block?height=H` for its hash and time
 * (the header event carries no hash). Heights are delivered exactly once and in order: a missed
 * range (websocket drop, skipped event) is filled from HTTP before anything newer is delivered.
 * The websocket reconnects with exponential backoff (1 s → 15 s by default, like upstream).
 */
import {
  Comet38Client,
  toRfc3339WithNanoseconds,
  type ReadonlyDateWithNanoseconds,
} from '@cosmjs/tendermint-rpc';
import WebSocket from 'ws';
import type { Logger } from 'pino';
import { RelayMinerError } from '../core/index.js';
import { backoffDelayMs, sleep, type BackoffPolicy } from './backoff.js';
import { ChainClientClosedError, ChainConfigError, ChainResponseMalformedError } from './errors.js';
import { CometRpcTransport } from './rpc-transport.js';
import type { ChainMetrics } from './metrics.js';

/** One committed block as the miner and relayer see it. */
export interface BlockEvent {
  height: number;
  /** 32-byte header hash (`block_id.hash`). */
  hash: Uint8Array;
  /** The same hash as uppercase hex, the way CometBFT prints it. */
  hashHex: string;
  /** Header time, RFC 3339 with nanoseconds. */
  time: string;
  /** Header time in nanoseconds since the Unix epoch. */
  timeUnixNs: bigint;
}

export interface BlockSourceConfig {
  /** CometBFT RPC base URL (`http(s)://host:26657`). */
  query_node_rpc_url: string;
  /** Websocket endpoint; default: the RPC URL with ws(s) scheme and `/websocket` path. */
  websocket_url?: string;
  reconnect_initial_delay_ms?: number;
  reconnect_max_delay_ms?: number;
  /** Deadline of one `/block` request. */
  fetch_timeout_ms?: number;
  /** Reconnect when nothing (message or ping) arrives for this long; 0 disables. */
  idle_timeout_ms?: number;
}

export const DEFAULT_BLOCK_SOURCE_CONFIG = {
  reconnect_initial_delay_ms: 1_000,
  reconnect_max_delay_ms: 15_000,
  fetch_timeout_ms: 5_000,
  idle_timeout_ms: 120_000,
} as const;

export interface BlockSourceDeps {
  log: Logger;
  random?: () => number;
  transport?: CometRpcTransport;
  metrics?: ChainMetrics;
}

export type BlockListener = (block: BlockEvent) => void;

export const NEW_BLOCK_HEADER_QUERY = "tm.event='NewBlockHeader'";

/** `http://h:p/x` → `ws://h:p/x/websocket`. */
export function websocketUrlFor(rpcUrl: string): string {
  const u = new URL(rpcUrl);
  if (u.protocol === 'http:') u.protocol = 'ws:';
  else if (u.protocol === 'https:') u.protocol = 'wss:';
  else throw new ChainConfigError('query_node_rpc_url', `scheme must be http or https, got ${u.protocol}`);
  u.pathname = `${u.pathname.replace(/\/+$/, '')}/websocket`;
  return u.toString();
}

/**
 * Reads the height out of one websocket JSON-RPC message: the event height for a NewBlockHeader
 * event, `'ack'` for the subscription confirmation, `undefined` for anything else.
 */
export function parseSubscriptionMessage(text: string, subscribeId: number): number | 'ack' | undefined {
  let msg: unknown;
  try {
    msg = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof msg !== 'object' || msg === null) return undefined;
  const m = msg as { id?: unknown; error?: unknown; result?: unknown };
  if (m.error !== undefined && m.error !== null) {
    throw new ChainResponseMalformedError('websocket subscribe', `node refused: ${JSON.stringify(m.error)}`);
  }
  const result = m.result as
    { data?: { type?: unknown; value?: { header?: { height?: unknown } } } } | undefined;
  if (result === undefined || result === null || typeof result !== 'object') return undefined;
  if (result.data === undefined) return m.id === subscribeId ? 'ack' : undefined;
  if (result.data.type !== 'tendermint/event/NewBlockHeader') return undefined;
  const h = result.data.value?.header?.height;
  const height = typeof h === 'string' ? Number(h) : typeof h === 'number' ? h : NaN;
  if (!Number.isSafeInteger(height) || height <= 0) {
    throw new ChainResponseMalformedError('NewBlockHeader event', `bad height ${String(h)}`);
  }
  return height;
}

export class BlockSource {
  private readonly cfg: Required<BlockSourceConfig>;
  private readonly log: Logger;
  private readonly random: () => number;
  private readonly transport: CometRpcTransport;
  private readonly ownsTransport: boolean;
  private readonly policy: BackoffPolicy;
  private readonly metrics: ChainMetrics | undefined;
  private readonly listeners = new Set<BlockListener>();
  private readonly iterators = new Set<BlockIteratorQueue>();
  private readonly lifetime = new AbortController();
  private ws: WebSocket | undefined;
  private reconnectAttempt = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private nextSubscribeId = 1;
  private last: BlockEvent | undefined;
  /** Highest height known to exist; the pump delivers everything up to it. */
  private target = 0;
  private pumping: Promise<void> | undefined;
  private started = false;
  private closed = false;
  private isSubscribed = false;

  constructor(deps: BlockSourceDeps, cfg: BlockSourceConfig) {
    this.cfg = {
      ...DEFAULT_BLOCK_SOURCE_CONFIG,
      websocket_url: cfg.websocket_url ?? websocketUrlFor(cfg.query_node_rpc_url),
      ...stripUndefined(cfg),
    } as Required<BlockSourceConfig>;
    this.log = deps.log.child({ component: 'block_source' });
    this.random = deps.random ?? Math.random;
    this.transport = deps.transport ?? new CometRpcTransport(cfg.query_node_rpc_url);
    this.ownsTransport = deps.transport === undefined;
    this.metrics = deps.metrics;
    this.policy = {
      initialDelayMs: this.cfg.reconnect_initial_delay_ms,
      maxDelayMs: this.cfg.reconnect_max_delay_ms,
      multiplier: 2,
      jitter: 0,
    };
  }

  /** True while a websocket subscription is acknowledged and alive (for health checks). */
  get subscribed(): boolean {
    return this.isSubscribed;
  }

  /** The newest block delivered so far. */
  latest(): BlockEvent | undefined {
    return this.last;
  }

  /** Registers a listener for every block from now on; returns the unsubscribe function. */
  onBlock(listener: BlockListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Every block delivered after this call, in order, until close(). */
  blocks(): AsyncIterableIterator<BlockEvent> {
    const q = new BlockIteratorQueue(() => this.iterators.delete(q));
    if (this.closed) q.end();
    else this.iterators.add(q);
    return q;
  }

  /**
   * Fetches and delivers the latest block, then subscribes. Throws if the first block cannot be
   * read (after retries); websocket trouble afterwards is handled by reconnecting.
   */
  async start(): Promise<BlockEvent> {
    if (this.closed) throw new ChainClientClosedError('block source start');
    if (this.started) throw new ChainConfigError('block source', 'start() called twice');
    this.started = true;
    let first: BlockEvent | undefined;
    for (let attempt = 0; first === undefined; attempt++) {
      try {
        first = await this.fetchBlock(undefined);
      } catch (err) {
        if (!(err instanceof RelayMinerError && err.retryable) || attempt >= 3 || this.closed) throw err;
        await sleep(backoffDelayMs(attempt, this.policy, this.random), this.lifetime.signal);
      }
    }
    this.target = first.height;
    this.deliver(first);
    this.connect();
    return first;
  }

  /** Stops the subscription, ends iterators, waits for an in-flight fetch to settle. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.isSubscribed = false;
    this.lifetime.abort(new ChainClientClosedError('block source'));
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.idleTimer);
    const ws = this.ws;
    this.ws = undefined;
    if (ws !== undefined) {
      ws.removeAllListeners();
      ws.on('error', () => undefined);
      ws.terminate();
    }
    await this.pumping?.catch(() => undefined);
    for (const q of this.iterators) q.end();
    this.iterators.clear();
    this.listeners.clear();
    if (this.ownsTransport) this.transport.close();
  }

  // ---- websocket ----------------------------------------------------------------------------

  private connect(): void {
    if (this.closed) return;
    const subscribeId = this.nextSubscribeId++;
    const ws = new WebSocket(this.cfg.websocket_url, { perMessageDeflate: false, handshakeTimeout: 10_000 });
    this.ws = ws;
    let failed = false;
    const fail = (why: string, err?: unknown): void => {
      if (failed || this.ws !== ws) return;
      failed = true;
      this.ws = undefined;
      this.isSubscribed = false;
      clearTimeout(this.idleTimer);
      ws.removeAllListeners();
      ws.on('error', () => undefined);
      ws.terminate();
      this.scheduleReconnect(why, err);
    };
    ws.on('open', () => {
      this.touch(ws, fail);
      ws.send(
        JSON.stringify({
          jsonrpc: '2.0',
          id: subscribeId,
          method: 'subscribe',
          params: { query: NEW_BLOCK_HEADER_QUERY },
        }),
      );
    });
    ws.on('ping', () => this.touch(ws, fail));
    ws.on('message', (data: WebSocket.RawData) => {
      this.touch(ws, fail);
      let parsed: number | 'ack' | undefined;
      try {
        parsed = parseSubscriptionMessage(rawToString(data), subscribeId);
      } catch (err) {
        fail('bad subscription message', err);
        return;
      }
      if (parsed === 'ack') {
        this.log.info({ url: this.cfg.websocket_url }, 'subscribed to new block headers');
        this.reconnectAttempt = 0;
        this.isSubscribed = true;
        void this.catchUpToLatest();
      } else if (parsed !== undefined) {
        this.advanceTo(parsed);
      }
    });
    ws.on('error', (err) => fail('websocket error', err));
    ws.on('close', (code) => fail(`websocket closed (${code})`));
  }

  private touch(ws: WebSocket, fail: (why: string) => void): void {
    if (this.cfg.idle_timeout_ms <= 0 || this.ws !== ws) return;
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(
      () => fail(`no message for ${this.cfg.idle_timeout_ms} ms`),
      this.cfg.idle_timeout_ms,
    );
  }

  private scheduleReconnect(why: string, err?: unknown): void {
    if (this.closed) return;
    const delayMs = backoffDelayMs(this.reconnectAttempt++, this.policy, this.random);
    this.metrics?.blockSourceReconnects.inc();
    this.log.warn({ err, reason: why, delay_ms: delayMs }, 'block subscription lost; reconnecting');
    this.reconnectTimer = setTimeout(() => this.connect(), delayMs);
  }

  /** After (re)subscribing: heights produced while we were away exist already; fetch them. */
  private async catchUpToLatest(): Promise<void> {
    try {
      const latest = await this.fetchBlock(undefined);
      this.advanceTo(latest.height);
    } catch (err) {
      // The next header event triggers the same gap fill; nothing is lost by waiting for it.
      if (!this.closed) this.log.warn({ err }, 'could not read the latest block after subscribing');
    }
  }

  // ---- ordered delivery ---------------------------------------------------------------------

  private advanceTo(height: number): void {
    if (height > this.target) this.target = height;
    if (this.pumping === undefined) {
      this.pumping = this.pump().finally(() => {
        this.pumping = undefined;
        // A target raised while the last fetch was settling must not be stranded.
        if (!this.closed && this.last !== undefined && this.target > this.last.height)
          this.advanceTo(this.target);
      });
    }
  }

  private async pump(): Promise<void> {
    let attempt = 0;
    while (!this.closed && this.last !== undefined && this.last.height < this.target) {
      const height = this.last.height + 1;
      try {
        const block = await this.fetchBlock(height);
        if (this.closed) return;
        attempt = 0;
        if (height < this.target) this.metrics?.blocksBackfilled.inc();
        this.deliver(block);
      } catch (err) {
        if (this.closed) return;
        const delayMs = backoffDelayMs(attempt++, this.policy, this.random);
        this.log.warn({ err, block_height: height, delay_ms: delayMs }, 'block fetch failed; retrying');
        try {
          await sleep(delayMs, this.lifetime.signal);
        } catch {
          return;
        }
      }
    }
  }

  private deliver(block: BlockEvent): void {
    this.last = block;
    this.metrics?.blockHeight.set(block.height);
    for (const listener of this.listeners) {
      try {
        listener(block);
      } catch (err) {
        this.log.error({ err, block_height: block.height }, 'block listener threw');
      }
    }
    for (const q of this.iterators) q.push(block);
  }

  /** `/block?height=H` (latest when undefined) → BlockEvent. */
  private async fetchBlock(height: number | undefined): Promise<BlockEvent> {
    const comet = Comet38Client.create(this.transport.bind(this.cfg.fetch_timeout_ms, this.lifetime.signal));
    const res = await comet.block(height);
    return blockEventFrom(res.block.header.height, res.blockId.hash, res.block.header.time);
  }
}

/** Builds a BlockEvent from the parts of a `/block` reply. */
export function blockEventFrom(
  height: number,
  hash: Uint8Array,
  time: ReadonlyDateWithNanoseconds,
): BlockEvent {
  if (hash.length !== 32)
    throw new ChainResponseMalformedError(`block ${height}`, `hash has ${hash.length} bytes`);
  const timeUnixNs = BigInt(time.getTime()) * 1_000_000n + BigInt(time.nanoseconds ?? 0);
  return {
    height,
    hash: Uint8Array.from(hash),
    hashHex: Buffer.from(hash).toString('hex').toUpperCase(),
    time: toRfc3339WithNanoseconds(time),
    timeUnixNs,
  };
}

function rawToString(data: WebSocket.RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString('utf8');
  return data.toString('utf8');
}

function stripUndefined<T extends object>(obj: T): Partial<T> {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Unbounded queue behind one `blocks()` iterator. */
class BlockIteratorQueue implements AsyncIterableIterator<BlockEvent> {
  private readonly buffered: BlockEvent[] = [];
  private waiting: ((r: IteratorResult<BlockEvent>) => void) | undefined;
  private done = false;

  constructor(private readonly onReturn: () => void) {}

  push(block: BlockEvent): void {
    if (this.done) return;
    if (this.waiting !== undefined) {
      const w = this.waiting;
      this.waiting = undefined;
      w({ value: block, done: false });
    } else {
      this.buffered.push(block);
    }
  }

  end(): void {
    this.done = true;
    if (this.waiting !== undefined) {
      const w = this.waiting;
      this.waiting = undefined;
      w({ value: undefined, done: true });
    }
  }

  next(): Promise<IteratorResult<BlockEvent>> {
    const b = this.buffered.shift();
    if (b !== undefined) return Promise.resolve({ value: b, done: false });
    if (this.done) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => (this.waiting = resolve));
  }

  return(): Promise<IteratorResult<BlockEvent>> {
    this.end();
    this.buffered.length = 0;
    this.onReturn();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<BlockEvent> {
    return this;
  }
}
