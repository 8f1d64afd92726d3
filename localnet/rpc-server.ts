/**
 * CometBFT JSON-RPC over HTTP (POST JSON-RPC and GET URI style) and websocket (`/websocket`,
 * with `subscribe` to `tm.event='NewBlockHeader'` and `tm.event='Tx'` queries) on top of a
 * LocalChain. Response shapes follow CometBFT v0.38 so @cosmjs/tendermint-rpc's Comet38Client
 * decodes them. Extra methods for tests: `localnet_advance` (produce blocks) and `localnet_fault`.
 * Two faults live here rather than in the chain, because they are about the node's RPC, not its
 * state: `unavailable` (every HTTP and websocket connection is closed or refused for a while, blocks
 * go on being produced) and `skip_events` (the next blocks are produced but their websocket events
 * are never sent, as a subscriber that missed them would see).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { bytesToHex, hexToBytes } from '../core/index.js';
import { abciQuery } from './abci-query.js';
import type { BlockRecord, ChainListener, IndexedTx, LocalChain, TxResult } from './chain.js';
import { LocalnetServerError } from './errors.js';
import type { AbciEvent } from './events.js';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

class RpcError extends Error {
  constructor(
    readonly rpcCode: number,
    message: string,
    readonly data: string,
  ) {
    super(message);
  }
}

const upperHex = (b: Uint8Array): string => bytesToHex(b).toUpperCase();
const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');

function rfc3339(timeMs: number): string {
  return new Date(timeMs).toISOString().replace(/\.(\d{3})Z$/, '.$1000000Z');
}

function eventsJson(events: AbciEvent[]): Json {
  return events.map((e) => ({
    type: e.type,
    attributes: e.attributes.map((a) => ({ key: a.key, value: a.value, index: a.index ?? true })),
  }));
}

function txResultJson(r: TxResult): Json {
  return {
    code: r.code,
    data: null,
    log: r.log,
    info: '',
    gas_wanted: r.gasWanted.toString(),
    gas_used: r.gasUsed.toString(),
    events: eventsJson(r.events),
    codespace: r.codespace,
  };
}

const EMPTY_BLOCK_ID = { hash: '', parts: { total: 0, hash: '' } };

function blockIdJson(hash: Uint8Array): Json {
  return { hash: upperHex(hash), parts: { total: 1, hash: upperHex(hash) } };
}

export function headerJson(chain: LocalChain, b: BlockRecord): { [k: string]: Json } {
  const zero = '';
  return {
    version: { block: '11', app: '0' },
    chain_id: chain.chainId,
    height: String(b.height),
    time: rfc3339(b.timeMs),
    last_block_id: b.lastBlockHash.length === 0 ? EMPTY_BLOCK_ID : blockIdJson(b.lastBlockHash),
    last_commit_hash: zero,
    data_hash: upperHex(b.dataHash),
    validators_hash: zero,
    next_validators_hash: zero,
    consensus_hash: zero,
    app_hash: upperHex(b.appHash),
    last_results_hash: zero,
    evidence_hash: zero,
    proposer_address: '0000000000000000000000000000000000000000',
  };
}

function blockJson(chain: LocalChain, b: BlockRecord): Json {
  return {
    block_id: blockIdJson(b.hash),
    block: {
      header: headerJson(chain, b),
      data: { txs: b.txs.map(b64) },
      evidence: { evidence: [] },
      last_commit: {
        height: String(b.height - 1),
        round: 0,
        block_id: b.lastBlockHash.length === 0 ? EMPTY_BLOCK_ID : blockIdJson(b.lastBlockHash),
        signatures: [],
      },
    },
  };
}

function txJson(t: IndexedTx): Json {
  return {
    hash: t.hash,
    height: String(t.height),
    index: t.index,
    tx_result: txResultJson(t.result),
    tx: b64(t.bytes),
  };
}

type Params = Record<string, unknown> | unknown[] | undefined;

function param(params: Params, name: string, index: number): unknown {
  if (Array.isArray(params)) return params[index];
  return params?.[name];
}

/** A scalar param as text ('' for anything that is not a string or number). */
function textOf(raw: unknown): string {
  return typeof raw === 'string' || typeof raw === 'number' || typeof raw === 'bigint' ? String(raw) : '';
}

function textParam(params: Params, name: string, index: number, dflt: string): string {
  const raw = param(params, name, index);
  return raw === undefined || raw === null ? dflt : textOf(raw);
}

interface JsonRpcRequest {
  id?: Json;
  method?: unknown;
  params?: Params;
}

function asRequest(x: unknown): JsonRpcRequest {
  return typeof x === 'object' && x !== null ? x : {};
}

function heightParam(chain: LocalChain, params: Params): number {
  const raw = param(params, 'height', 0);
  if (raw === undefined || raw === null || raw === '' || raw === '0' || raw === 0) return chain.height;
  const h = Number(raw);
  if (!Number.isSafeInteger(h) || h < 1)
    throw new RpcError(-32603, 'Internal error', `invalid height ${textOf(raw)}`);
  return h;
}

function bytesParam(raw: unknown, name: string): Uint8Array {
  if (typeof raw !== 'string') throw new RpcError(-32602, 'Invalid params', `${name} must be a string`);
  let s = raw.replace(/^"|"$/g, '');
  if (s.startsWith('0x') || s.startsWith('0X')) {
    s = s.slice(2);
    return hexToBytes(s);
  }
  return new Uint8Array(Buffer.from(s, 'base64'));
}

export interface RpcServerOptions {
  host?: string;
  port?: number;
}

/** Longest outage `localnet_fault unavailable` accepts, in ms. */
const MAX_UNAVAILABLE_MS = 600_000;
/** Most blocks `localnet_fault skip_events` accepts. */
const MAX_SKIPPED_EVENT_BLOCKS = 100_000;

function intParam(params: Params, name: string, index: number, min: number, max: number): number {
  const n = Number(param(params, name, index));
  if (!Number.isSafeInteger(n) || n < min || n > max)
    throw new RpcError(-32602, 'Invalid params', `${name} must be ${min}..${max}`);
  return n;
}

interface Subscription {
  id: Json;
  query: string;
  kind: 'NewBlockHeader' | 'NewBlock' | 'Tx';
  sender?: string;
}

function parseQuery(query: string): Omit<Subscription, 'id' | 'query'> {
  const ev = /tm\.event\s*=\s*'(\w+)'/.exec(query)?.[1];
  if (ev !== 'NewBlockHeader' && ev !== 'NewBlock' && ev !== 'Tx') {
    throw new RpcError(-32603, 'Internal error', `unsupported subscription query: ${query}`);
  }
  const sender = /message\.sender\s*=\s*'([^']+)'/.exec(query)?.[1];
  return { kind: ev, ...(sender !== undefined ? { sender } : {}) };
}

/** The CometBFT RPC facade of a LocalChain. */
export class RpcServer {
  private readonly http: Server;
  private readonly wss: WebSocketServer;
  private readonly sockets = new Map<WebSocket, Subscription[]>();
  private unlisten: (() => void) | undefined;
  /** `tcp://host:port` the server listens on, reported by `status`. */
  private rpcAddress = 'tcp://127.0.0.1:0';
  /** Wall-clock ms until which every connection is closed on arrival (`unavailable` fault). */
  private unavailableUntilMs = 0;
  /** Heights whose websocket events are withheld (`skip_events` fault), inclusive. */
  private skippedEvents: { from: number; to: number } | undefined;

  constructor(private readonly chain: LocalChain) {
    this.http = createServer((req, res) => {
      if (this.isUnavailable()) {
        req.socket.destroy();
        return;
      }
      this.handleHttp(req, res).catch((err: unknown) => {
        res.statusCode = 500;
        res.end(String(err));
      });
    });
    this.wss = new WebSocketServer({ noServer: true });
    this.http.on('connection', (socket) => {
      if (this.isUnavailable()) socket.destroy();
    });
    this.http.on('upgrade', (req, socket, head) => {
      if (req.url !== '/websocket' || this.isUnavailable()) {
        socket.destroy();
        return;
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => this.onSocket(ws));
    });
  }

  async listen(opts: RpcServerOptions = {}): Promise<{ host: string; port: number; url: string }> {
    const host = opts.host ?? '127.0.0.1';
    await new Promise<void>((resolve, reject) => {
      this.http.once('error', (err) =>
        reject(new LocalnetServerError(`cannot listen on ${host}:${opts.port ?? 0}`, { cause: err })),
      );
      this.http.listen(opts.port ?? 0, host, () => resolve());
    });
    this.unlisten = this.chain.onEvent((e) => this.broadcast(e));
    const port = (this.http.address() as AddressInfo).port;
    this.rpcAddress = `tcp://${host}:${port}`;
    return { host, port, url: `http://${host}:${port}` };
  }

  async close(): Promise<void> {
    this.unlisten?.();
    for (const ws of this.sockets.keys()) ws.terminate();
    this.sockets.clear();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
    this.http.closeAllConnections();
    await new Promise<void>((resolve, reject) => this.http.close((err) => (err ? reject(err) : resolve())));
  }

  /**
   * Closes every websocket now and, for `ms`, every new connection and every request on an open
   * one as it arrives (the request that asked still gets its answer). Blocks keep being produced;
   * their events reach nobody.
   */
  makeUnavailable(ms: number): void {
    this.unavailableUntilMs = Date.now() + ms;
    for (const ws of this.sockets.keys()) ws.terminate();
    this.sockets.clear();
  }

  /** Withholds the websocket events (block and tx) of the next `blocks` heights. */
  skipEvents(blocks: number): void {
    const from = this.chain.height + 1;
    this.skippedEvents = { from, to: from + blocks - 1 };
  }

  private isUnavailable(): boolean {
    return Date.now() < this.unavailableUntilMs;
  }

  private async handleHttp(req: IncomingMessage, res: ServerResponse): Promise<void> {
    res.setHeader('Content-Type', 'application/json');
    if (req.method === 'GET') {
      const url = new URL(req.url ?? '/', 'http://localhost');
      const method = url.pathname.replace(/^\//, '');
      const params: Record<string, unknown> = {};
      for (const [k, v] of url.searchParams) params[k] = v.replace(/^"|"$/g, '');
      res.end(JSON.stringify(this.respond(-1, method, params)));
      return;
    }
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    let body: unknown;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      res.end(
        JSON.stringify({ jsonrpc: '2.0', id: -1, error: { code: -32700, message: 'Parse error', data: '' } }),
      );
      return;
    }
    const reqs: unknown[] = Array.isArray(body) ? body : [body];
    const out = reqs.map((x) => {
      const r = asRequest(x);
      return this.respond(r.id ?? -1, textOf(r.method), r.params);
    });
    res.end(JSON.stringify(Array.isArray(body) ? out : out[0]));
  }

  private respond(id: Json, method: string, params: Params): Json {
    try {
      return { jsonrpc: '2.0', id, result: this.call(method, params) };
    } catch (err) {
      if (err instanceof RpcError)
        return { jsonrpc: '2.0', id, error: { code: err.rpcCode, message: err.message, data: err.data } };
      throw err;
    }
  }

  private call(method: string, params: Params): Json {
    const chain = this.chain;
    switch (method) {
      case 'health':
        return {};
      case 'abci_info': {
        const latest = chain.latestBlock();
        return {
          response: {
            data: 'pocket',
            version: 'localnet',
            app_version: '1',
            last_block_height: String(latest?.height ?? 0),
            last_block_app_hash: b64(latest?.appHash ?? new Uint8Array(0)),
          },
        };
      }
      case 'status': {
        const latest = chain.latestBlock();
        const first = chain.block(chain.initialHeight);
        return {
          node_info: {
            protocol_version: { p2p: '8', block: '11', app: '0' },
            id: '0000000000000000000000000000000000000000',
            // No p2p layer: the RPC address stands in for it.
            listen_addr: this.rpcAddress,
            network: chain.chainId,
            version: '0.38.19',
            channels: '40202122233038606100',
            moniker: 'localnet',
            other: { tx_index: 'on', rpc_address: this.rpcAddress },
          },
          sync_info: {
            latest_block_hash: latest ? upperHex(latest.hash) : '00',
            latest_app_hash: latest ? upperHex(latest.appHash) : '00',
            latest_block_height: String(latest?.height ?? 0),
            latest_block_time: rfc3339(latest?.timeMs ?? 0),
            earliest_block_hash: first ? upperHex(first.hash) : '',
            earliest_app_hash: first ? upperHex(first.appHash) : '',
            earliest_block_height: String(first?.height ?? 0),
            earliest_block_time: rfc3339(first?.timeMs ?? 0),
            catching_up: false,
          },
          validator_info: {
            address: '0000000000000000000000000000000000000000',
            pub_key: { type: 'tendermint/PubKeyEd25519', value: Buffer.alloc(32, 1).toString('base64') },
            voting_power: '1',
          },
        };
      }
      case 'block': {
        const h = heightParam(chain, params);
        const b = chain.block(h);
        if (b === undefined) {
          throw new RpcError(
            -32603,
            'Internal error',
            `height ${h} must be less than or equal to the current blockchain height ${chain.height}`,
          );
        }
        return blockJson(chain, b);
      }
      case 'block_results': {
        const h = heightParam(chain, params);
        const b = chain.block(h);
        if (b === undefined) {
          throw new RpcError(
            -32603,
            'Internal error',
            `height ${h} must be less than or equal to the current blockchain height ${chain.height}`,
          );
        }
        return {
          height: String(b.height),
          txs_results: b.txResults.map(txResultJson),
          finalize_block_events: eventsJson(b.finalizeEvents),
          validator_updates: [],
          consensus_param_updates: null,
          app_hash: b64(b.appHash),
        };
      }
      case 'abci_query': {
        const path = param(params, 'path', 0);
        if (typeof path !== 'string') throw new RpcError(-32602, 'Invalid params', 'path is required');
        const dataRaw = param(params, 'data', 1);
        const data =
          typeof dataRaw === 'string' && dataRaw.length > 0
            ? hexToBytes(dataRaw.replace(/^0x/, ''))
            : new Uint8Array(0);
        const answer = abciQuery(chain, path, data);
        const height = String(chain.height);
        if (!answer.ok) {
          return {
            response: {
              code: answer.error.code,
              log: answer.error.log,
              info: '',
              index: '0',
              key: null,
              value: null,
              proofOps: null,
              height,
              codespace: answer.error.codespace,
            },
          };
        }
        return {
          response: {
            code: 0,
            log: '',
            info: '',
            index: '0',
            key: null,
            value: b64(answer.value),
            proofOps: null,
            height,
            codespace: '',
          },
        };
      }
      case 'broadcast_tx_sync':
      case 'broadcast_tx_async': {
        const tx = bytesParam(param(params, 'tx', 0), 'tx');
        const r = chain.broadcastTxSync(tx);
        if (r.duplicate) throw new RpcError(-32603, 'Internal error', 'tx already exists in cache');
        return {
          code: r.result.code,
          data: '',
          log: r.result.log,
          codespace: r.result.codespace,
          hash: r.hash,
        };
      }
      case 'tx': {
        const hash = upperHex(bytesParam(param(params, 'hash', 0), 'hash'));
        const t = chain.tx(hash);
        if (t === undefined) throw new RpcError(-32603, 'Internal error', `tx (${hash}) not found`);
        return txJson(t);
      }
      case 'num_unconfirmed_txs':
        return {
          n_txs: String(chain.mempoolSize),
          total: String(chain.mempoolSize),
          total_bytes: '0',
          txs: null,
        };
      case 'localnet_advance': {
        const n = Number(param(params, 'blocks', 0) ?? 1);
        if (!Number.isSafeInteger(n) || n < 1 || n > 100_000)
          throw new RpcError(-32602, 'Invalid params', 'blocks must be 1..100000');
        for (let i = 0; i < n; i++) chain.produceBlock();
        return { height: String(chain.height) };
      }
      case 'localnet_fault': {
        const kind = param(params, 'kind', 0);
        if (kind === 'drop_next_tx') chain.faults.dropNextTxs += Number(param(params, 'count', 1) ?? 1);
        else if (kind === 'delay_blocks') chain.faults.blockDelayMs = Number(param(params, 'ms', 1) ?? 0);
        else if (kind === 'reject_next_tx') {
          chain.rejectNextBroadcasts(Number(param(params, 'count', 1) ?? 1), {
            codespace: textParam(params, 'codespace', 2, 'sdk'),
            code: Number(param(params, 'code', 3) ?? 1),
            log: textParam(params, 'log', 4, 'rejected by localnet fault injection'),
          });
        } else if (kind === 'unavailable') {
          this.makeUnavailable(intParam(params, 'ms', 1, 1, MAX_UNAVAILABLE_MS));
        } else if (kind === 'skip_events') {
          this.skipEvents(intParam(params, 'blocks', 1, 1, MAX_SKIPPED_EVENT_BLOCKS));
        } else
          throw new RpcError(
            -32602,
            'Invalid params',
            `unknown fault kind ${String(kind)}; expected drop_next_tx, delay_blocks, reject_next_tx, unavailable or skip_events`,
          );
        return {};
      }
      default:
        throw new RpcError(-32601, 'Method not found', method);
    }
  }

  private onSocket(ws: WebSocket): void {
    this.sockets.set(ws, []);
    ws.on('close', () => this.sockets.delete(ws));
    ws.on('message', (raw: Buffer) => {
      let msg: JsonRpcRequest;
      try {
        msg = asRequest(JSON.parse(raw.toString('utf8')));
      } catch {
        ws.send(
          JSON.stringify({
            jsonrpc: '2.0',
            id: -1,
            error: { code: -32700, message: 'Parse error', data: '' },
          }),
        );
        return;
      }
      const id = msg.id ?? -1;
      const method = textOf(msg.method);
      const params = msg.params;
      const subs = this.sockets.get(ws) ?? [];
      try {
        if (method === 'subscribe') {
          const query = textParam(params, 'query', 0, '');
          subs.push({ id, query, ...parseQuery(query) });
          ws.send(JSON.stringify({ jsonrpc: '2.0', id, result: {} }));
        } else if (method === 'unsubscribe') {
          const query = textParam(params, 'query', 0, '');
          this.sockets.set(
            ws,
            subs.filter((s) => s.query !== query),
          );
          ws.send(JSON.stringify({ jsonrpc: '2.0', id, result: {} }));
        } else if (method === 'unsubscribe_all') {
          this.sockets.set(ws, []);
          ws.send(JSON.stringify({ jsonrpc: '2.0', id, result: {} }));
        } else {
          ws.send(JSON.stringify(this.respond(id, method, params)));
        }
      } catch (err) {
        if (!(err instanceof RpcError)) throw err;
        ws.send(
          JSON.stringify({
            jsonrpc: '2.0',
            id,
            error: { code: err.rpcCode, message: err.message, data: err.data },
          }),
        );
      }
    });
  }

  private broadcast(e: ChainListener): void {
    const skip = this.skippedEvents;
    if (skip !== undefined) {
      const height = e.kind === 'block' ? e.block.height : e.tx.height;
      if (height >= skip.from && height <= skip.to) return;
      if (height > skip.to) this.skippedEvents = undefined;
    }
    for (const [ws, subs] of this.sockets) {
      for (const s of subs) {
        let data: Json | undefined;
        let events: Record<string, string[]> = {};
        if (e.kind === 'block' && s.kind === 'NewBlockHeader') {
          data = {
            type: 'tendermint/event/NewBlockHeader',
            value: { header: headerJson(this.chain, e.block) },
          };
          events = { 'tm.event': ['NewBlockHeader'] };
        } else if (e.kind === 'block' && s.kind === 'NewBlock') {
          data = { type: 'tendermint/event/NewBlock', value: blockJson(this.chain, e.block) };
          events = { 'tm.event': ['NewBlock'] };
        } else if (
          e.kind === 'tx' &&
          s.kind === 'Tx' &&
          (s.sender === undefined || e.signers.includes(s.sender))
        ) {
          data = {
            type: 'tendermint/event/Tx',
            value: {
              TxResult: {
                height: String(e.tx.height),
                index: e.tx.index,
                tx: b64(e.tx.bytes),
                result: txResultJson(e.tx.result),
              },
            },
          };
          events = { 'tm.event': ['Tx'], 'tx.hash': [e.tx.hash], 'tx.height': [String(e.tx.height)] };
          for (const ev of e.tx.result.events) {
            for (const a of ev.attributes) (events[`${ev.type}.${a.key}`] ??= []).push(a.value);
          }
        }
        if (data !== undefined)
          ws.send(JSON.stringify({ jsonrpc: '2.0', id: s.id, result: { query: s.query, data, events } }));
      }
    }
  }
}
