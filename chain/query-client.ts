/**
 * Typed chain queries over CometBFT RPC `abci_query` (path = gRPC full method name, data =
 * protobuf request), through @cosmjs/tendermint-rpc. Every call has a deadline; retryable
 * failures (node unreachable, timeout, transient RPC errors) are retried with exponential backoff
 * and jitter, everything else surfaces at once as a typed fault (chain/errors.ts).
 */
import { Comet38Client } from '@cosmjs/tendermint-rpc';
import { QueryAccountRequest, QueryAccountResponse } from 'cosmjs-types/cosmos/auth/v1beta1/query';
import { BaseAccount } from 'cosmjs-types/cosmos/auth/v1beta1/auth';
import { PubKey as Secp256k1PubKey } from 'cosmjs-types/cosmos/crypto/secp256k1/keys';
import { QueryBalanceRequest, QueryBalanceResponse } from 'cosmjs-types/cosmos/bank/v1beta1/query';
import type { Logger } from 'pino';
import { RelayMinerError } from '../core/index.js';
import { pb } from '../protocol/index.js';
import { backoffDelayMs, sleep, type BackoffPolicy } from './backoff.js';
import {
  ChainClientClosedError,
  ChainConfigError,
  ChainQueryUnimplementedError,
  ChainResponseMalformedError,
  UnsupportedAccountTypeError,
  abciQueryError,
} from './errors.js';
import { CometRpcTransport } from './rpc-transport.js';
import type { ChainMetrics } from './metrics.js';
import { blockEventFrom, type BlockEvent } from './block-source.js';

/** gRPC full method names served over `abci_query` (chain.md §9). */
export const QUERY_PATHS = {
  sessionGetSession: '/pocket.session.Query/GetSession',
  sessionParams: '/pocket.session.Query/Params',
  sharedParams: '/pocket.shared.Query/Params',
  sharedParamsAtHeight: '/pocket.shared.Query/ParamsAtHeight',
  application: '/pocket.application.Query/Application',
  applicationParams: '/pocket.application.Query/Params',
  supplier: '/pocket.supplier.Query/Supplier',
  supplierParams: '/pocket.supplier.Query/Params',
  service: '/pocket.service.Query/Service',
  serviceParams: '/pocket.service.Query/Params',
  relayMiningDifficulty: '/pocket.service.Query/RelayMiningDifficulty',
  relayMiningDifficultyAtHeight: '/pocket.service.Query/RelayMiningDifficultyAtHeight',
  computeUnitsPerRelayAtHeight: '/pocket.service.Query/ComputeUnitsPerRelayAtHeight',
  proofParams: '/pocket.proof.Query/Params',
  claim: '/pocket.proof.Query/Claim',
  allClaims: '/pocket.proof.Query/AllClaims',
  proof: '/pocket.proof.Query/Proof',
  tokenomicsParams: '/pocket.tokenomics.Query/Params',
  authAccount: '/cosmos.auth.v1beta1.Query/Account',
  bankBalance: '/cosmos.bank.v1beta1.Query/Balance',
  txSimulate: '/cosmos.tx.v1beta1.Service/Simulate',
} as const;

export const BASE_ACCOUNT_TYPE_URL = '/cosmos.auth.v1beta1.BaseAccount';
export const SECP256K1_PUBKEY_TYPE_URL = '/cosmos.crypto.secp256k1.PubKey';

/** Query client configuration; keys are the YAML keys (snake_case). */
export interface QueryClientConfig {
  /** CometBFT RPC base URL (upstream `pocket_node.query_node_rpc_url`). */
  query_node_rpc_url: string;
  /** Deadline of one attempt (upstream gRPC queries use 5 s). */
  query_timeout_ms?: number;
  /** Retries after the first attempt, for retryable failures only. */
  max_retries?: number;
  retry_initial_delay_ms?: number;
  retry_max_delay_ms?: number;
  /** Page size for paginated queries (AllClaims). */
  page_limit?: number;
}

export const DEFAULT_QUERY_CLIENT_CONFIG = {
  query_timeout_ms: 5_000,
  max_retries: 3,
  retry_initial_delay_ms: 200,
  retry_max_delay_ms: 5_000,
  page_limit: 100,
} as const;

export interface QueryClientDeps {
  log: Logger;
  /** Source of jitter; tests pass a fixed function. */
  random?: () => number;
  /** Shared transport (e.g. with the tx client); the query client then does not close it. */
  transport?: CometRpcTransport;
  metrics?: ChainMetrics;
}

/** Per-call overrides. */
export interface CallOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Query state at this height instead of the latest (ABCI `height`). */
  height?: number;
}

/** What the signer needs from an auth account. */
export interface ChainAccount {
  address: string;
  /** 33-byte compressed secp256k1 key, absent until the account has signed once. */
  pubKey: Uint8Array | undefined;
  accountNumber: bigint;
  sequence: bigint;
}

/** An ABCI event with plain string attributes (typed-event values are proto-JSON). */
export interface ChainEvent {
  type: string;
  attributes: { key: string; value: string }[];
}

export interface BlockResults {
  height: number;
  finalizeBlockEvents: ChainEvent[];
  txResults: { code: number; codespace: string; log: string; events: ChainEvent[] }[];
}

/** A raw ABCI query answer. */
export interface AbciQueryResult {
  code: number;
  codespace: string;
  log: string;
  value: Uint8Array;
}

/** Anything with ts-proto / cosmjs-types encode and decode. */
interface ProtoCodec<T> {
  encode(message: T): { finish(): Uint8Array };
  decode(input: Uint8Array): T;
}

const MAX_PAGES = 10_000;

export class ChainQueryClient {
  readonly transport: CometRpcTransport;
  private readonly cfg: Required<QueryClientConfig>;
  private readonly policy: BackoffPolicy;
  private readonly log: Logger;
  private readonly random: () => number;
  private readonly ownsTransport: boolean;
  private readonly metrics: ChainMetrics | undefined;
  private closed = false;

  constructor(deps: QueryClientDeps, cfg: QueryClientConfig) {
    this.cfg = { ...DEFAULT_QUERY_CLIENT_CONFIG, ...cfg };
    for (const key of [
      'query_timeout_ms',
      'retry_initial_delay_ms',
      'retry_max_delay_ms',
      'page_limit',
    ] as const) {
      if (!(this.cfg[key] > 0)) throw new ChainConfigError(key, `must be > 0, got ${this.cfg[key]}`);
    }
    if (!Number.isInteger(this.cfg.max_retries) || this.cfg.max_retries < 0) {
      throw new ChainConfigError('max_retries', `must be an integer ≥ 0, got ${this.cfg.max_retries}`);
    }
    this.transport = deps.transport ?? new CometRpcTransport(this.cfg.query_node_rpc_url);
    this.ownsTransport = deps.transport === undefined;
    this.log = deps.log.child({ component: 'chain_query' });
    this.random = deps.random ?? Math.random;
    this.metrics = deps.metrics;
    this.policy = {
      initialDelayMs: this.cfg.retry_initial_delay_ms,
      maxDelayMs: this.cfg.retry_max_delay_ms,
      multiplier: 2,
      jitter: 0.5,
    };
  }

  // ---- session ------------------------------------------------------------------------------

  /** GetSession(app, service, height); height 0 means the node's current height. */
  async getSession(
    applicationAddress: string,
    serviceId: string,
    blockHeight: number,
    opts?: CallOptions,
  ): Promise<pb.sessionTypes.Session> {
    const res = await this.query(
      `session ${applicationAddress}/${serviceId}@${blockHeight}`,
      QUERY_PATHS.sessionGetSession,
      pb.sessionQuery.QueryGetSessionRequest,
      { applicationAddress, serviceId, blockHeight: BigInt(blockHeight) },
      pb.sessionQuery.QueryGetSessionResponse,
      opts,
    );
    return required(res.session, 'GetSession', 'session');
  }

  async getSessionParams(opts?: CallOptions): Promise<pb.sessionParams.Params> {
    const res = await this.query(
      'session params',
      QUERY_PATHS.sessionParams,
      pb.sessionQuery.QueryParamsRequest,
      {},
      pb.sessionQuery.QueryParamsResponse,
      opts,
    );
    return required(res.params, 'session Params', 'params');
  }

  // ---- shared -------------------------------------------------------------------------------

  async getSharedParams(opts?: CallOptions): Promise<pb.sharedParams.Params> {
    const res = await this.query(
      'shared params',
      QUERY_PATHS.sharedParams,
      pb.sharedQuery.QueryParamsRequest,
      {},
      pb.sharedQuery.QueryParamsResponse,
      opts,
    );
    return required(res.params, 'shared Params', 'params');
  }

  /** Shared params in effect at `height` (use this for a given session, chain.md §1.1). */
  async getSharedParamsAtHeight(height: number, opts?: CallOptions): Promise<pb.sharedParams.Params> {
    const res = await this.query(
      `shared params@${height}`,
      QUERY_PATHS.sharedParamsAtHeight,
      pb.sharedQuery.QueryParamsAtHeightRequest,
      { height: BigInt(height) },
      pb.sharedQuery.QueryParamsAtHeightResponse,
      opts,
    );
    return required(res.params, 'shared ParamsAtHeight', 'params');
  }

  // ---- application / supplier ---------------------------------------------------------------

  async getApplication(address: string, opts?: CallOptions): Promise<pb.applicationTypes.Application> {
    const res = await this.query(
      `application ${address}`,
      QUERY_PATHS.application,
      pb.applicationQuery.QueryGetApplicationRequest,
      { address },
      pb.applicationQuery.QueryGetApplicationResponse,
      opts,
    );
    return required(res.application, 'Application', 'application');
  }

  async getApplicationParams(opts?: CallOptions): Promise<pb.applicationParams.Params> {
    const res = await this.query(
      'application params',
      QUERY_PATHS.applicationParams,
      pb.applicationQuery.QueryParamsRequest,
      {},
      pb.applicationQuery.QueryParamsResponse,
      opts,
    );
    return required(res.params, 'application Params', 'params');
  }

  async getSupplier(
    operatorAddress: string,
    opts?: CallOptions & { dehydrated?: boolean },
  ): Promise<pb.sharedSupplier.Supplier> {
    const res = await this.query(
      `supplier ${operatorAddress}`,
      QUERY_PATHS.supplier,
      pb.supplierQuery.QueryGetSupplierRequest,
      { operatorAddress, dehydrated: opts?.dehydrated ?? false },
      pb.supplierQuery.QueryGetSupplierResponse,
      opts,
    );
    return required(res.supplier, 'Supplier', 'supplier');
  }

  async getSupplierParams(opts?: CallOptions): Promise<pb.supplierParams.Params> {
    const res = await this.query(
      'supplier params',
      QUERY_PATHS.supplierParams,
      pb.supplierQuery.QueryParamsRequest,
      {},
      pb.supplierQuery.QueryParamsResponse,
      opts,
    );
    return required(res.params, 'supplier Params', 'params');
  }

  // ---- service ------------------------------------------------------------------------------

  async getService(
    id: string,
    opts?: CallOptions & { dehydrated?: boolean },
  ): Promise<pb.sharedService.Service> {
    const res = await this.query(
      `service ${id}`,
      QUERY_PATHS.service,
      pb.serviceQuery.QueryGetServiceRequest,
      { id, dehydrated: opts?.dehydrated ?? false },
      pb.serviceQuery.QueryGetServiceResponse,
      opts,
    );
    return required(res.service, 'Service', 'service');
  }

  async getServiceParams(opts?: CallOptions): Promise<pb.serviceParams.Params> {
    const res = await this.query(
      'service params',
      QUERY_PATHS.serviceParams,
      pb.serviceQuery.QueryParamsRequest,
      {},
      pb.serviceQuery.QueryParamsResponse,
      opts,
    );
    return required(res.params, 'service Params', 'params');
  }

  async getRelayMiningDifficulty(
    serviceId: string,
    opts?: CallOptions,
  ): Promise<pb.serviceDifficulty.RelayMiningDifficulty> {
    const res = await this.query(
      `relay mining difficulty ${serviceId}`,
      QUERY_PATHS.relayMiningDifficulty,
      pb.serviceQuery.QueryGetRelayMiningDifficultyRequest,
      { serviceId },
      pb.serviceQuery.QueryGetRelayMiningDifficultyResponse,
      opts,
    );
    return required(res.relayMiningDifficulty, 'RelayMiningDifficulty', 'relayMiningDifficulty');
  }

  /** Difficulty in effect at `blockHeight` (the chain answers the base target when none is recorded). */
  async getRelayMiningDifficultyAtHeight(
    serviceId: string,
    blockHeight: number,
    opts?: CallOptions,
  ): Promise<pb.serviceDifficulty.RelayMiningDifficulty> {
    const res = await this.query(
      `relay mining difficulty ${serviceId}@${blockHeight}`,
      QUERY_PATHS.relayMiningDifficultyAtHeight,
      pb.serviceQuery.QueryGetRelayMiningDifficultyAtHeightRequest,
      { serviceId, blockHeight: BigInt(blockHeight) },
      pb.serviceQuery.QueryGetRelayMiningDifficultyAtHeightResponse,
      opts,
    );
    return required(res.relayMiningDifficulty, 'RelayMiningDifficultyAtHeight', 'relayMiningDifficulty');
  }

  /**
   * CUPR in effect at `blockHeight`. Nodes older than poktroll v0.1.35 do not serve the query;
   * like upstream, fall back to the live service's CUPR then.
   */
  async getComputeUnitsPerRelayAtHeight(
    serviceId: string,
    blockHeight: number,
    opts?: CallOptions,
  ): Promise<bigint> {
    try {
      const res = await this.query(
        `compute units per relay ${serviceId}@${blockHeight}`,
        QUERY_PATHS.computeUnitsPerRelayAtHeight,
        pb.serviceQuery.QueryComputeUnitsPerRelayAtHeightRequest,
        { serviceId, blockHeight: BigInt(blockHeight) },
        pb.serviceQuery.QueryComputeUnitsPerRelayAtHeightResponse,
        opts,
      );
      return res.computeUnitsPerRelay;
    } catch (err) {
      if (!(err instanceof ChainQueryUnimplementedError)) throw err;
      this.log.debug(
        { service_id: serviceId },
        'ComputeUnitsPerRelayAtHeight not served; using live service CUPR',
      );
      const service = await this.getService(serviceId, opts);
      return service.computeUnitsPerRelay;
    }
  }

  // ---- proof --------------------------------------------------------------------------------

  async getProofParams(opts?: CallOptions): Promise<pb.proofParams.Params> {
    const res = await this.query(
      'proof params',
      QUERY_PATHS.proofParams,
      pb.proofQuery.QueryParamsRequest,
      {},
      pb.proofQuery.QueryParamsResponse,
      opts,
    );
    return required(res.params, 'proof Params', 'params');
  }

  /** The claim for (session, supplier); throws ChainNotFoundError when there is none. */
  async getClaim(
    sessionId: string,
    supplierOperatorAddress: string,
    opts?: CallOptions,
  ): Promise<pb.proofTypes.Claim> {
    const res = await this.query(
      `claim ${sessionId}/${supplierOperatorAddress}`,
      QUERY_PATHS.claim,
      pb.proofQuery.QueryGetClaimRequest,
      { sessionId, supplierOperatorAddress },
      pb.proofQuery.QueryGetClaimResponse,
      opts,
    );
    return required(res.claim, 'Claim', 'claim');
  }

  /** Every claim of a supplier, following pagination to the end. */
  async getAllClaimsBySupplier(
    supplierOperatorAddress: string,
    opts?: CallOptions,
  ): Promise<pb.proofTypes.Claim[]> {
    const out: pb.proofTypes.Claim[] = [];
    let key: Buffer = Buffer.alloc(0);
    for (let page = 0; page < MAX_PAGES; page++) {
      const res = await this.query(
        `claims of ${supplierOperatorAddress} (page ${page})`,
        QUERY_PATHS.allClaims,
        pb.proofQuery.QueryAllClaimsRequest,
        {
          pagination: {
            key,
            offset: 0n,
            limit: BigInt(this.cfg.page_limit),
            countTotal: false,
            reverse: false,
          },
          supplierOperatorAddress,
        },
        pb.proofQuery.QueryAllClaimsResponse,
        opts,
      );
      out.push(...res.claims);
      const next = res.pagination?.nextKey;
      if (next === undefined || next.length === 0) return out;
      key = next;
    }
    throw new ChainResponseMalformedError('AllClaims', `pagination did not end within ${MAX_PAGES} pages`);
  }

  /** The proof for (session, supplier); throws ChainNotFoundError (proofs are deleted each block). */
  async getProof(
    sessionId: string,
    supplierOperatorAddress: string,
    opts?: CallOptions,
  ): Promise<pb.proofTypes.Proof> {
    const res = await this.query(
      `proof ${sessionId}/${supplierOperatorAddress}`,
      QUERY_PATHS.proof,
      pb.proofQuery.QueryGetProofRequest,
      { sessionId, supplierOperatorAddress },
      pb.proofQuery.QueryGetProofResponse,
      opts,
    );
    return required(res.proof, 'Proof', 'proof');
  }

  async getTokenomicsParams(opts?: CallOptions): Promise<pb.tokenomicsParams.Params> {
    const res = await this.query(
      'tokenomics params',
      QUERY_PATHS.tokenomicsParams,
      pb.tokenomicsQuery.QueryParamsRequest,
      {},
      pb.tokenomicsQuery.QueryParamsResponse,
      opts,
    );
    return required(res.params, 'tokenomics Params', 'params');
  }

  // ---- cosmos auth / bank -------------------------------------------------------------------

  /** The BaseAccount at `address` (number, sequence and public key when known). */
  async getAccount(address: string, opts?: CallOptions): Promise<ChainAccount> {
    const res = await this.query(
      `account ${address}`,
      QUERY_PATHS.authAccount,
      QueryAccountRequest,
      { address },
      QueryAccountResponse,
      opts,
    );
    const any = required(res.account, 'Account', 'account');
    if (any.typeUrl !== BASE_ACCOUNT_TYPE_URL) throw new UnsupportedAccountTypeError(address, any.typeUrl);
    return decodeBaseAccount(any.value);
  }

  /** Spendable balance of `denom` (default upokt) in its smallest unit. */
  async getBalance(address: string, denom = 'upokt', opts?: CallOptions): Promise<bigint> {
    const res = await this.query(
      `balance ${address}/${denom}`,
      QUERY_PATHS.bankBalance,
      QueryBalanceRequest,
      { address, denom },
      QueryBalanceResponse,
      opts,
    );
    const amount = res.balance?.amount ?? '0';
    if (!/^\d+$/.test(amount))
      throw new ChainResponseMalformedError('Balance', `amount is not an integer: ${amount}`);
    return BigInt(amount);
  }

  // ---- CometBFT blocks ----------------------------------------------------------------------

  /** `/block?height=H` (latest without a height): height, hash and time. */
  async getBlock(height?: number, opts: CallOptions = {}): Promise<BlockEvent> {
    const res = await this.withRetry(
      `block ${height ?? 'latest'}`,
      opts,
      (timeoutMs) => Comet38Client.create(this.transport.bind(timeoutMs, opts.signal)).block(height),
      'block',
    );
    return blockEventFrom(res.block.header.height, res.blockId.hash, res.block.header.time);
  }

  /** `/block_results?height=H`: end-block events (settlement) and per-tx results. */
  async getBlockResults(height: number, opts: CallOptions = {}): Promise<BlockResults> {
    const res = await this.withRetry(
      `block_results ${height}`,
      opts,
      (timeoutMs) => Comet38Client.create(this.transport.bind(timeoutMs, opts.signal)).blockResults(height),
      'block_results',
    );
    const events = (
      list: readonly { type: string; attributes: readonly { key: string; value: string }[] }[],
    ) =>
      list.map((e) => ({
        type: e.type,
        attributes: e.attributes.map((a) => ({ key: a.key, value: a.value })),
      }));
    return {
      height: res.height,
      finalizeBlockEvents: events(res.finalizeBlockEvents),
      txResults: res.results.map((r) => ({
        code: r.code,
        codespace: r.codespace ?? '',
        log: r.log ?? '',
        events: events(r.events),
      })),
    };
  }

  // ---- generic ------------------------------------------------------------------------------

  /** One typed query: encode, abci_query with retries, classify failures, decode. */
  async query<Req, Res>(
    what: string,
    path: string,
    reqCodec: ProtoCodec<Req>,
    request: Req,
    resCodec: ProtoCodec<Res>,
    opts: CallOptions = {},
  ): Promise<Res> {
    const value = await this.abciQuery(what, path, reqCodec.encode(request).finish(), opts);
    try {
      return resCodec.decode(value);
    } catch (err) {
      throw new ChainResponseMalformedError(what, `response of ${path} does not decode`, { cause: err });
    }
  }

  /** abci_query returning the response value bytes; code ≠ 0 becomes a typed fault. */
  async abciQuery(what: string, path: string, data: Uint8Array, opts: CallOptions = {}): Promise<Uint8Array> {
    const res = await this.abciQueryRaw(what, path, data, opts);
    if (res.code !== 0) throw abciQueryError(what, res.code, res.codespace, res.log);
    return res.value;
  }

  /**
   * abci_query that returns a failed query as a value (code, codespace, log); only transport
   * failures are retried and thrown. The tx client uses it for Simulate, whose failures are
   * expected rejections.
   */
  async abciQueryRaw(
    what: string,
    path: string,
    data: Uint8Array,
    opts: CallOptions = {},
  ): Promise<AbciQueryResult> {
    return this.withRetry(
      what,
      opts,
      async (timeoutMs) => {
        const comet = Comet38Client.create(this.transport.bind(timeoutMs, opts.signal));
        const res = await comet.abciQuery({
          path,
          data,
          ...(opts.height !== undefined ? { height: opts.height } : {}),
        });
        return { code: res.code ?? 0, codespace: res.codespace, log: res.log ?? '', value: res.value };
      },
      path.replace(/^\//, ''),
    );
  }

  /**
   * Runs `attempt` until it succeeds, fails for good, or retries run out. `method` labels the
   * metrics and must come from a small fixed set (a gRPC path or an RPC name, never an address).
   */
  async withRetry<T>(
    what: string,
    opts: CallOptions,
    attempt: (timeoutMs: number) => Promise<T>,
    method = 'other',
  ): Promise<T> {
    if (this.closed) throw new ChainClientClosedError(what);
    const timeoutMs = opts.timeoutMs ?? this.cfg.query_timeout_ms;
    for (let i = 0; ; i++) {
      const stop = this.metrics?.rpcDuration.startTimer({ method });
      try {
        const value = await attempt(timeoutMs);
        stop?.({ outcome: 'ok' });
        return value;
      } catch (err) {
        stop?.({ outcome: err instanceof RelayMinerError ? err.code : 'UNKNOWN' });
        const retryable = err instanceof RelayMinerError && err.retryable;
        if (!retryable || i >= this.cfg.max_retries || this.closed || opts.signal?.aborted) throw err;
        const delayMs = backoffDelayMs(i, this.policy, this.random);
        this.metrics?.rpcRetries.inc({ method });
        this.log.debug({ err, attempt: i + 1, delay_ms: delayMs, what }, 'chain call failed; retrying');
        await sleep(delayMs, opts.signal);
      }
    }
  }

  close(): void {
    this.closed = true;
    if (this.ownsTransport) this.transport.close();
  }
}

/** Decodes a protobuf BaseAccount (Any value) into what a signer needs. */
export function decodeBaseAccount(value: Uint8Array): ChainAccount {
  let acc: BaseAccount;
  try {
    acc = BaseAccount.decode(value);
  } catch (err) {
    throw new ChainResponseMalformedError('Account', 'BaseAccount does not decode', { cause: err });
  }
  let pubKey: Uint8Array | undefined;
  if (acc.pubKey !== undefined && acc.pubKey.value.length > 0) {
    if (acc.pubKey.typeUrl !== SECP256K1_PUBKEY_TYPE_URL) {
      throw new ChainResponseMalformedError(
        'Account',
        `public key type ${acc.pubKey.typeUrl} is not secp256k1`,
      );
    }
    pubKey = Secp256k1PubKey.decode(acc.pubKey.value).key;
    if (pubKey.length !== 33) {
      throw new ChainResponseMalformedError(
        'Account',
        `secp256k1 public key has ${pubKey.length} bytes, want 33`,
      );
    }
  }
  return { address: acc.address, pubKey, accountNumber: acc.accountNumber, sequence: acc.sequence };
}

function required<T>(value: T | undefined, what: string, field: string): T {
  if (value === undefined) throw new ChainResponseMalformedError(what, `response has no ${field}`);
  return value;
}
