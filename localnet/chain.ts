/**
 * The simulated Pocket chain: state from a genesis, blocks, a mempool, CheckTx (decode,
 * ValidateBasic, ante), block execution of MsgCreateClaim / MsgSubmitProof with the proof
 * module's checks, the proof EndBlocker (signatures, path, closest proof), settlement at proof
 * window close with balance changes and events, and relay-mining difficulty updates.
 *
 * Everything here is synchronous and in memory; the RPC server (rpc-server.ts) and the block timer
 * (localnet.ts) drive it.
 */
import { createHash } from 'node:crypto';
import { bytesToHex, equalBytes } from '../core/index.js';
import {
  BASE_RELAY_DIFFICULTY_TARGET,
  computeNewDifficultyTargetHash,
  computeRelaysEma,
  decodeRelay,
  estimatedFromDifficulty,
  isRelayVolumeApplicable,
  parseClaimRoot,
  pb,
  proofPath,
  proofRequirement,
  relayRequestSignableHash,
  relayResponseSignableHash,
  selectSessionSuppliers,
  sessionHeadersEqual,
  sessionId as computeSessionId,
  sessionIdPreimage,
  sessionWindows,
  sha256,
  supplierSignatureDigest,
  claimedUpokt as computeClaimedUpokt,
  type ProofRequirement,
  type SessionParams,
  PLACEHOLDER_RING_ADDRESS,
  PLACEHOLDER_RING_PUBLIC_KEY,
} from '../protocol/index.js';
import { expectedRingAddresses, verifyRingSignature, type EcBackend } from '../rings/index.js';
import {
  checkClosestProofBytes,
  decodeCompactClosestProof,
  decompactClosestProof,
  verifyClosestProof,
} from '../protocol/smst/index.js';
import {
  PROOF,
  SESSION,
  SDK,
  chainError,
  msgFailure,
  proofError,
  sdkError,
  type ChainError,
  type GrpcCode,
} from './chain-errors.js';
import type { Genesis, GenesisSharedParams, RpcTypeName } from './genesis.js';
import { LocalnetControlError, LocalnetStateError } from './errors.js';
import { typedEvent, plainEvent, type AbciEvent } from './events.js';
import {
  MSG_CREATE_CLAIM,
  decodeTx,
  runAnte,
  type AnteAccount,
  type AnteEffects,
  type DecodedTx,
} from './tx.js';

const Coin = (amount: bigint): pb.cosmosBase.Coin => ({ denom: 'upokt', amount: amount.toString() });

export interface Account {
  address: string;
  accountNumber: bigint;
  sequence: bigint;
  pubKey?: Uint8Array;
  balanceUpokt: bigint;
}

export interface TxResult {
  code: number;
  codespace: string;
  log: string;
  gasWanted: bigint;
  gasUsed: bigint;
  events: AbciEvent[];
}

export interface BlockRecord {
  height: number;
  timeMs: number;
  /** Nanoseconds within the millisecond, so times are strictly increasing RFC 3339 strings. */
  hash: Uint8Array;
  lastBlockHash: Uint8Array;
  dataHash: Uint8Array;
  appHash: Uint8Array;
  txs: Uint8Array[];
  txResults: TxResult[];
  finalizeEvents: AbciEvent[];
}

export interface IndexedTx {
  hash: string;
  height: number;
  index: number;
  bytes: Uint8Array;
  result: TxResult;
}

export type ChainListener =
  { kind: 'block'; block: BlockRecord } | { kind: 'tx'; tx: IndexedTx; signers: string[] };

export interface LocalChainDeps {
  /** Wall clock in ms; block times and unordered-tx bounds come from it. */
  now?: () => number;
  /** Block hash from height and the header digest; the default is the header digest itself. */
  blockHasher?: (height: number, headerDigest: Uint8Array) => Uint8Array;
  /** EC backend for tx, ring and supplier signatures. */
  backend: EcBackend<unknown>;
}

/** Fault knobs for tests (drop, delay, reject). */
export interface FaultState {
  /** Tx hashes (uppercase hex) accepted by CheckTx but dropped from the mempool before the next block. */
  dropTxHashes: Set<string>;
  /** Drop the next N txs that pass CheckTx. */
  dropNextTxs: number;
  /** Reject the next N broadcasts with this error (CheckTx result). */
  rejectNext: { count: number; error: ChainError } | undefined;
  /** Extra delay before each timer block, in ms. */
  blockDelayMs: number;
}

function sharedToPb(p: GenesisSharedParams): pb.sharedParams.Params {
  return {
    numBlocksPerSession: BigInt(p.num_blocks_per_session),
    gracePeriodEndOffsetBlocks: BigInt(p.grace_period_end_offset_blocks),
    claimWindowOpenOffsetBlocks: BigInt(p.claim_window_open_offset_blocks),
    claimWindowCloseOffsetBlocks: BigInt(p.claim_window_close_offset_blocks),
    proofWindowOpenOffsetBlocks: BigInt(p.proof_window_open_offset_blocks),
    proofWindowCloseOffsetBlocks: BigInt(p.proof_window_close_offset_blocks),
    supplierUnbondingPeriodSessions: BigInt(p.supplier_unbonding_period_sessions),
    applicationUnbondingPeriodSessions: BigInt(p.application_unbonding_period_sessions),
    computeUnitsToTokensMultiplier: p.compute_units_to_tokens_multiplier,
    gatewayUnbondingPeriodSessions: BigInt(p.gateway_unbonding_period_sessions),
    computeUnitCostGranularity: p.compute_unit_cost_granularity,
    sessionGridAnchorHeight: BigInt(p.session_grid_anchor_height),
    sessionNumberAtAnchor: BigInt(p.session_number_at_anchor),
  };
}

/** The session-math view of pb shared params. */
export function sessionParamsOf(p: pb.sharedParams.Params): SessionParams {
  return {
    num_blocks_per_session: Number(p.numBlocksPerSession),
    grace_period_end_offset_blocks: Number(p.gracePeriodEndOffsetBlocks),
    claim_window_open_offset_blocks: Number(p.claimWindowOpenOffsetBlocks),
    claim_window_close_offset_blocks: Number(p.claimWindowCloseOffsetBlocks),
    proof_window_open_offset_blocks: Number(p.proofWindowOpenOffsetBlocks),
    proof_window_close_offset_blocks: Number(p.proofWindowCloseOffsetBlocks),
    session_grid_anchor_height: Number(p.sessionGridAnchorHeight),
    session_number_at_anchor: Number(p.sessionNumberAtAnchor),
  };
}

const RPC_TYPE: Record<RpcTypeName, pb.sharedService.RPCType> = {
  GRPC: pb.sharedService.RPCType.GRPC,
  WEBSOCKET: pb.sharedService.RPCType.WEBSOCKET,
  JSON_RPC: pb.sharedService.RPCType.JSON_RPC,
  REST: pb.sharedService.RPCType.REST,
  COMET_BFT: pb.sharedService.RPCType.COMET_BFT,
};

/** A query failure: the gRPC-style code the node answers with, as an ABCI error. */
export type QueryOutcome<T> = { ok: true; value: T } | { ok: false; error: ChainError };

interface MutableState {
  accounts: Map<string, Account>;
  claims: Map<string, pb.proofTypes.Claim>;
  proofs: Map<string, pb.proofTypes.Proof>;
  suppliers: Map<string, pb.sharedSupplier.Supplier>;
  applications: Map<string, pb.applicationTypes.Application>;
  unorderedNonces: Map<string, bigint>;
  moduleBalances: Map<string, bigint>;
}

function cloneState(s: MutableState): MutableState {
  const accounts = new Map<string, Account>();
  for (const [k, v] of s.accounts) accounts.set(k, { ...v });
  const suppliers = new Map<string, pb.sharedSupplier.Supplier>();
  for (const [k, v] of s.suppliers) suppliers.set(k, { ...v, stake: v.stake ? { ...v.stake } : undefined });
  const applications = new Map<string, pb.applicationTypes.Application>();
  for (const [k, v] of s.applications)
    applications.set(k, { ...v, stake: v.stake ? { ...v.stake } : undefined });
  return {
    accounts,
    claims: new Map(s.claims),
    proofs: new Map(s.proofs),
    suppliers,
    applications,
    unorderedNonces: new Map(s.unorderedNonces),
    moduleBalances: new Map(s.moduleBalances),
  };
}

const claimKey = (sessionIdValue: string, supplier: string): string => `${sessionIdValue}/${supplier}`;
const nonceKey = (signer: string, timeoutNs: bigint): string => `${signer}/${timeoutNs}`;

export class LocalChain {
  readonly chainId: string;
  readonly initialHeight: number;
  private readonly now: () => number;
  private readonly blockHasher: (height: number, headerDigest: Uint8Array) => Uint8Array;
  private readonly backend: EcBackend<unknown>;
  private readonly genesisTimeMs: number | undefined;
  private readonly minGasPrice: number;

  private state: MutableState;
  private checkState: MutableState | undefined;
  private readonly services = new Map<string, pb.sharedService.Service>();
  private readonly gateways = new Map<string, pb.gatewayTypes.Gateway>();
  private readonly sharedHistory: { height: number; params: pb.sharedParams.Params }[] = [];
  private readonly cuprHistory = new Map<string, { height: number; cupr: bigint }[]>();
  private readonly difficultyHistory = new Map<string, pb.serviceDifficulty.RelayMiningDifficulty[]>();
  readonly sessionParams: pb.sessionParams.Params;
  proofParams: pb.proofParams.Params;
  readonly serviceParams: pb.serviceParams.Params;
  readonly applicationParams: pb.applicationParams.Params;
  readonly supplierParams: pb.supplierParams.Params;
  readonly tokenomicsParams: pb.tokenomicsParams.Params;

  private readonly blocks: BlockRecord[] = [];
  private readonly txIndex = new Map<string, IndexedTx>();
  private mempool: DecodedTx[] = [];
  private readonly listeners = new Set<(e: ChainListener) => void>();
  private nextAccountNumber = 0n;
  readonly faults: FaultState = {
    dropTxHashes: new Set(),
    dropNextTxs: 0,
    rejectNext: undefined,
    blockDelayMs: 0,
  };

  constructor(genesis: Genesis, deps: LocalChainDeps) {
    this.chainId = genesis.chain_id;
    this.initialHeight = genesis.initial_height;
    this.now = deps.now ?? Date.now;
    this.blockHasher = deps.blockHasher ?? ((_h, digest) => digest);
    this.backend = deps.backend;
    this.genesisTimeMs = genesis.genesis_time?.getTime();
    this.minGasPrice = genesis.min_gas_price_upokt;
    const p = genesis.params;

    this.sharedHistory.push({ height: 0, params: sharedToPb(p.shared) });
    this.sessionParams = { numSuppliersPerSession: BigInt(p.session.num_suppliers_per_session) };
    this.proofParams = {
      proofRequestProbability: p.proof.proof_request_probability,
      proofRequirementThreshold: Coin(p.proof.proof_requirement_threshold_upokt),
      proofMissingPenalty: Coin(p.proof.proof_missing_penalty_upokt),
      proofSubmissionFee: Coin(p.proof.proof_submission_fee_upokt),
    };
    this.serviceParams = {
      addServiceFee: Coin(p.service.add_service_fee_upokt),
      targetNumRelays: p.service.target_num_relays,
    };
    this.applicationParams = {
      maxDelegatedGateways: p.application.max_delegated_gateways,
      minStake: Coin(p.application.min_stake_upokt),
    };
    this.supplierParams = {
      minStake: Coin(p.supplier.min_stake_upokt),
      stakingFee: Coin(p.supplier.staking_fee_upokt),
    };
    const shares = (s: typeof p.tokenomics.mint_allocation_percentages) => ({
      dao: s.dao,
      proposer: s.proposer,
      supplier: s.supplier,
      sourceOwner: s.source_owner,
      application: s.application,
    });
    this.tokenomicsParams = {
      mintAllocationPercentages: shares(p.tokenomics.mint_allocation_percentages),
      daoRewardAddress: p.tokenomics.dao_reward_address,
      globalInflationPerClaim: p.tokenomics.global_inflation_per_claim,
      mintEqualsBurnClaimDistribution: shares(p.tokenomics.mint_equals_burn_claim_distribution),
      mintRatio: p.tokenomics.mint_ratio,
      overservicingBonusMultiplier: p.tokenomics.overservicing_bonus_multiplier,
    };

    const accounts = new Map<string, Account>();
    for (const a of genesis.accounts) {
      accounts.set(a.address, {
        address: a.address,
        accountNumber: this.nextAccountNumber++,
        sequence: 0n,
        ...(a.pub_key ? { pubKey: a.pub_key } : {}),
        balanceUpokt: a.balance_upokt,
      });
    }
    for (const s of genesis.services) {
      this.services.set(s.id, {
        id: s.id,
        name: s.name,
        computeUnitsPerRelay: s.compute_units_per_relay,
        ownerAddress: s.owner_address,
        metadata: undefined,
      });
      this.cuprHistory.set(s.id, [{ height: 0, cupr: s.compute_units_per_relay }]);
    }
    for (const gw of genesis.gateways) {
      this.gateways.set(gw.address, {
        address: gw.address,
        stake: Coin(gw.stake_upokt),
        unstakeSessionEndHeight: 0n,
        metadata: undefined,
      });
    }
    const applications = new Map<string, pb.applicationTypes.Application>();
    for (const app of genesis.applications) {
      applications.set(app.address, {
        address: app.address,
        stake: Coin(app.stake_upokt),
        serviceConfigs: app.service_ids.map((serviceId) => ({ serviceId })),
        delegateeGatewayAddresses: [...app.delegatee_gateway_addresses],
        pendingUndelegations: new Map(),
        unstakeSessionEndHeight: 0n,
        pendingTransfer: undefined,
        perSessionSpendLimit: undefined,
        serviceConfigHistory: app.service_ids.map((serviceId) => ({
          applicationAddress: app.address,
          service: { serviceId },
          activationHeight: 1n,
          deactivationHeight: 0n,
        })),
      });
    }
    const suppliers = new Map<string, pb.sharedSupplier.Supplier>();
    for (const s of genesis.suppliers) {
      const services: pb.sharedService.SupplierServiceConfig[] = s.services.map((svc) => ({
        serviceId: svc.service_id,
        endpoints: svc.endpoints.map((e) => ({ url: e.url, rpcType: RPC_TYPE[e.rpc_type], configs: [] })),
        revShare:
          svc.rev_share.length > 0
            ? svc.rev_share.map((r) => ({ address: r.address, revSharePercentage: r.rev_share_percentage }))
            : [{ address: s.owner_address, revSharePercentage: 100n }],
      }));
      suppliers.set(s.operator_address, {
        ownerAddress: s.owner_address,
        operatorAddress: s.operator_address,
        stake: Coin(s.stake_upokt),
        services,
        unstakeSessionEndHeight: 0n,
        serviceConfigHistory: services.map((service) => ({
          operatorAddress: s.operator_address,
          service,
          activationHeight: 1n,
          deactivationHeight: 0n,
        })),
      });
    }
    this.state = {
      accounts,
      claims: new Map(),
      proofs: new Map(),
      suppliers,
      applications,
      unorderedNonces: new Map(),
      moduleBalances: new Map(),
    };
  }

  // -------------------------------------------------------------------------------------------
  // Blocks

  /** Last committed height; initial_height − 1 before the first block. */
  get height(): number {
    return this.blocks.length === 0 ? this.initialHeight - 1 : this.blocks[this.blocks.length - 1]!.height;
  }

  latestBlock(): BlockRecord | undefined {
    return this.blocks[this.blocks.length - 1];
  }

  block(height: number): BlockRecord | undefined {
    const i = height - this.initialHeight;
    return i >= 0 && i < this.blocks.length ? this.blocks[i] : undefined;
  }

  /** The hash the session module stored for `height` (empty when the chain has no such block). */
  blockHash(height: number): Uint8Array {
    return this.block(height)?.hash ?? new Uint8Array(0);
  }

  private latestTimeMs(): number {
    return this.latestBlock()?.timeMs ?? this.genesisTimeMs ?? this.now();
  }

  onEvent(listener: (e: ChainListener) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get mempoolSize(): number {
    return this.mempool.length;
  }

  /** Executes the mempool and commits one block. */
  produceBlock(): BlockRecord {
    const height = this.height + 1;
    const prev = this.latestBlock();
    const timeMs = Math.max(this.now(), prev === undefined ? (this.genesisTimeMs ?? 0) : prev.timeMs + 1);
    const txs = this.mempool;
    this.mempool = [];
    // PreBlocker: unordered nonces whose timeout the block time has passed are removed.
    const blockNs = BigInt(timeMs) * 1_000_000n;
    for (const [k, t] of this.state.unorderedNonces) if (t < blockNs) this.state.unorderedNonces.delete(k);
    const txResults: TxResult[] = [];
    const indexed: { tx: IndexedTx; signers: string[] }[] = [];
    txs.forEach((tx, index) => {
      const result = this.deliverTx(tx, height, timeMs);
      txResults.push(result);
      const entry: IndexedTx = { hash: tx.hash, height, index, bytes: tx.bytes, result };
      this.txIndex.set(tx.hash, entry);
      indexed.push({ tx: entry, signers: tx.signers });
    });
    const finalizeEvents = [...this.validateSubmittedProofs(height), ...this.settlePendingClaims(height)];
    const lastBlockHash = prev?.hash ?? new Uint8Array(0);
    const dataHash = sha256(...txs.map((t) => sha256(t.bytes)));
    const appHash = sha256(
      prev?.appHash ?? new Uint8Array(0),
      ...txResults.map((r) => sha256(new TextEncoder().encode(`${r.code}/${r.log}`))),
    );
    const headerDigest = createHash('sha256')
      .update(`${this.chainId}/${height}/${timeMs}/`)
      .update(lastBlockHash)
      .update(dataHash)
      .update(appHash)
      .digest();
    const hash = this.blockHasher(height, new Uint8Array(headerDigest));
    const block: BlockRecord = {
      height,
      timeMs,
      hash,
      lastBlockHash,
      dataHash,
      appHash,
      txs: txs.map((t) => t.bytes),
      txResults,
      finalizeEvents,
    };
    this.blocks.push(block);
    this.checkState = undefined;
    for (const l of this.listeners) {
      l({ kind: 'block', block });
      for (const t of indexed) l({ kind: 'tx', tx: t.tx, signers: t.signers });
    }
    return block;
  }

  /** Produces blocks until `height` is committed. */
  advanceTo(height: number): void {
    while (this.height < height) this.produceBlock();
  }

  tx(hashHex: string): IndexedTx | undefined {
    return this.txIndex.get(hashHex.toUpperCase());
  }

  // -------------------------------------------------------------------------------------------
  // Accounts and balances

  account(address: string): Account | undefined {
    return this.state.accounts.get(address);
  }

  balance(address: string): bigint {
    return this.state.accounts.get(address)?.balanceUpokt ?? 0n;
  }

  application(address: string): pb.applicationTypes.Application | undefined {
    return this.state.applications.get(address);
  }

  supplier(operator: string): pb.sharedSupplier.Supplier | undefined {
    return this.state.suppliers.get(operator);
  }

  gateway(address: string): pb.gatewayTypes.Gateway | undefined {
    return this.gateways.get(address);
  }

  service(id: string): pb.sharedService.Service | undefined {
    return this.services.get(id);
  }

  claims(): pb.proofTypes.Claim[] {
    return [...this.state.claims.values()];
  }

  claim(sessionIdValue: string, supplier: string): pb.proofTypes.Claim | undefined {
    return this.state.claims.get(claimKey(sessionIdValue, supplier));
  }

  proofs(): pb.proofTypes.Proof[] {
    return [...this.state.proofs.values()];
  }

  private anteAccount(address: string): AnteAccount | undefined {
    return this.state.accounts.get(address);
  }

  // -------------------------------------------------------------------------------------------
  // Params

  sharedParamsAt(height: number): pb.sharedParams.Params {
    let found = this.sharedHistory[0]!.params;
    for (const e of this.sharedHistory) if (e.height <= height) found = e.params;
    return found;
  }

  /** Live shared params (those effective at the latest height). */
  get sharedParams(): pb.sharedParams.Params {
    return this.sharedParamsAt(Math.max(this.height, 0));
  }

  /**
   * A governance change of shared params: effective at the next session start; when N changes the
   * new epoch is anchored there with session number current + 1 (chain.md §1.1).
   */
  updateSharedParams(change: Partial<pb.sharedParams.Params>): number {
    const h = Math.max(this.height, 1);
    const current = this.sharedParamsAt(h);
    const w = sessionWindows(sessionParamsOf(current), h);
    const effective = w.next_session_start_height;
    const next: pb.sharedParams.Params = { ...current, ...change };
    if (
      change.numBlocksPerSession !== undefined &&
      change.numBlocksPerSession !== current.numBlocksPerSession
    ) {
      next.sessionGridAnchorHeight = BigInt(effective);
      next.sessionNumberAtAnchor = BigInt(w.session_number + 1);
    } else {
      next.sessionGridAnchorHeight = current.sessionGridAnchorHeight;
      next.sessionNumberAtAnchor = current.sessionNumberAtAnchor;
    }
    const existing = this.sharedHistory.findIndex((e) => e.height === effective);
    if (existing >= 0) this.sharedHistory.splice(existing, 1);
    this.sharedHistory.push({ height: effective, params: next });
    this.sharedHistory.sort((a, b) => a.height - b.height);
    return effective;
  }

  computeUnitsPerRelayAt(serviceId: string, height: number): bigint | undefined {
    const hist = this.cuprHistory.get(serviceId);
    if (hist === undefined) return undefined;
    let cupr = hist[0]!.cupr;
    for (const e of hist) if (e.height <= height) cupr = e.cupr;
    return cupr;
  }

  private defaultDifficulty(serviceId: string): pb.serviceDifficulty.RelayMiningDifficulty {
    return {
      serviceId,
      blockHeight: 0n,
      numRelaysEma: this.serviceParams.targetNumRelays,
      targetHash: Buffer.from(BASE_RELAY_DIFFICULTY_TARGET),
    };
  }

  difficultyAt(serviceId: string, height: number): pb.serviceDifficulty.RelayMiningDifficulty {
    const hist = this.difficultyHistory.get(serviceId) ?? [];
    let found: pb.serviceDifficulty.RelayMiningDifficulty | undefined;
    for (const d of hist) if (Number(d.blockHeight) <= height) found = d;
    return found ?? this.defaultDifficulty(serviceId);
  }

  currentDifficulty(serviceId: string): pb.serviceDifficulty.RelayMiningDifficulty {
    const hist = this.difficultyHistory.get(serviceId) ?? [];
    return hist[hist.length - 1] ?? this.defaultDifficulty(serviceId);
  }

  // -------------------------------------------------------------------------------------------
  // Sessions

  /** GetSession as the session keeper hydrates it (chain.md §3.3). 0 = current height. */
  getSession(
    appAddress: string,
    serviceId: string,
    blockHeight: number,
  ): QueryOutcome<pb.sessionTypes.Session> {
    const fail = (
      err: { code: number; text: string },
      detail: string,
    ): QueryOutcome<pb.sessionTypes.Session> => ({
      ok: false,
      error: chainError('session', err, detail),
    });
    const current = this.height;
    const h = blockHeight === 0 ? current : blockHeight;
    if (h > current) {
      return fail(
        SESSION.INVALID_BLOCK_HEIGHT,
        `requested height ${h} is higher than the current height ${current}`,
      );
    }
    if (h < 1) return fail(SESSION.INVALID_BLOCK_HEIGHT, `block height ${h} must be at least 1`);
    if (!/^[a-zA-Z0-9_-]{1,42}$/.test(serviceId))
      return fail(SESSION.HYDRATION, `invalid service ID: ${serviceId}`);
    const app = this.state.applications.get(appAddress);
    if (app === undefined)
      return fail(SESSION.APP_NOT_FOUND, `could not find app with address: ${appAddress} at height ${h}`);
    const params = sessionParamsOf(this.sharedParamsAt(h));
    const w = sessionWindows(params, h);
    const appHasService = app.serviceConfigHistory.some(
      (u) =>
        u.service?.serviceId === serviceId &&
        Number(u.activationHeight) <= h &&
        (u.deactivationHeight === 0n || h < Number(u.deactivationHeight)),
    );
    if (!appHasService) {
      return fail(
        SESSION.APP_NOT_STAKED_FOR_SERVICE,
        `application ${appAddress} not staked for service ID ${serviceId} at height ${h}`,
      );
    }
    const start = w.session_start_height;
    const startHash = this.blockHash(start);
    const preimage = sessionIdPreimage(startHash, serviceId, appAddress, start);
    const id = computeSessionId(startHash, serviceId, appAddress, start);
    const candidates: string[] = [];
    const sortedOperators = [...this.state.suppliers.keys()].sort((a, b) =>
      Buffer.compare(Buffer.from(a), Buffer.from(b)),
    );
    for (const op of sortedOperators) {
      const s = this.state.suppliers.get(op)!;
      const active = s.serviceConfigHistory.some(
        (u) =>
          u.service?.serviceId === serviceId &&
          Number(u.activationHeight) <= h &&
          (u.deactivationHeight === 0n || h < Number(u.deactivationHeight)),
      );
      if (active) candidates.push(op);
    }
    if (candidates.length === 0) {
      return fail(
        SESSION.SUPPLIERS_NOT_FOUND,
        `could not find any suppliers for service ${serviceId} at height ${h}`,
      );
    }
    const selected = selectSessionSuppliers(
      preimage,
      candidates,
      Number(this.sessionParams.numSuppliersPerSession),
    );
    const suppliers = selected.map((op) => {
      const s = this.state.suppliers.get(op)!;
      return {
        ...s,
        services: s.services.filter((c) => c.serviceId === serviceId),
        serviceConfigHistory: s.serviceConfigHistory.filter((u) => u.service?.serviceId === serviceId),
      };
    });
    return {
      ok: true,
      value: {
        header: {
          applicationAddress: appAddress,
          serviceId,
          sessionId: id,
          sessionStartBlockHeight: BigInt(start),
          sessionEndBlockHeight: BigInt(w.session_end_height),
        },
        sessionId: id,
        sessionNumber: BigInt(w.session_number),
        numBlocksPerSession: BigInt(params.num_blocks_per_session),
        application: app,
        suppliers,
      },
    };
  }

  // -------------------------------------------------------------------------------------------
  // Transactions

  /** CheckTx: decode, ValidateBasic, ante (no state change). */
  checkTx(bytes: Uint8Array): { hash: string; result: TxResult; tx?: DecodedTx; effects?: AnteEffects } {
    const decoded = decodeTx(bytes);
    const hash = bytesToHex(sha256(bytes)).toUpperCase();
    if (!decoded.ok) return { hash, result: failure(decoded.error, 0n, 0n) };
    const tx = decoded.tx;
    const view = this.checkView();
    const ante = runAnte(tx, {
      chainId: this.chainId,
      blockTimeMs: this.latestTimeMs(),
      blockHeight: this.height + 1,
      minGasPriceUpokt: this.minGasPrice,
      simulate: false,
      account: (a) => view.accounts.get(a),
      isUnorderedNonceUsed: (s, t) => view.unorderedNonces.has(nonceKey(s, t)),
      backend: this.backend,
    });
    if (!ante.ok) return { hash, result: failure(ante.error, tx.gasLimit, ante.gasUsed), tx };
    return {
      hash,
      result: {
        code: 0,
        codespace: '',
        log: '',
        gasWanted: tx.gasLimit,
        gasUsed: ante.effects.gasUsed,
        events: [],
      },
      tx,
      effects: ante.effects,
    };
  }

  /**
   * The CheckTx state: committed state plus the ante effects (fees, sequences, unordered nonces)
   * of every tx accepted since the last block, as the SDK's checkState; reset on commit.
   */
  private checkView(): MutableState {
    this.checkState ??= cloneState(this.state);
    return this.checkState;
  }

  /**
   * broadcast_tx_sync: CheckTx and, when it passes, admission to the mempool. Fault knobs apply
   * here: a forced rejection replaces the CheckTx result; a dropped tx passes CheckTx but never
   * reaches a block.
   */
  broadcastTxSync(bytes: Uint8Array): { hash: string; result: TxResult; duplicate: boolean } {
    const hash = bytesToHex(sha256(bytes)).toUpperCase();
    if (this.mempool.some((m) => m.hash === hash))
      return { hash, result: failure(sdkError(SDK.TX_IN_MEMPOOL_CACHE), 0n, 0n), duplicate: true };
    const reject = this.faults.rejectNext;
    if (reject !== undefined && reject.count > 0) {
      reject.count--;
      if (reject.count === 0) this.faults.rejectNext = undefined;
      return { hash, result: failure(reject.error, 0n, 0n), duplicate: false };
    }
    const checked = this.checkTx(bytes);
    if (checked.result.code !== 0 || checked.tx === undefined) return { ...checked, duplicate: false };
    this.applyAnte(this.checkView(), checked.effects!);
    if (this.faults.dropNextTxs > 0) {
      this.faults.dropNextTxs--;
      return { ...checked, duplicate: false };
    }
    if (this.faults.dropTxHashes.delete(hash)) return { ...checked, duplicate: false };
    this.mempool.push(checked.tx);
    return { ...checked, duplicate: false };
  }

  /** Simulate: the tx as if executed in the next block, on a throw-away copy of the state. */
  simulate(
    bytes: Uint8Array,
  ):
    | { ok: true; gasUsed: bigint; events: AbciEvent[]; log: string }
    | { ok: false; error: ChainError; gasUsed: bigint } {
    const decoded = decodeTx(bytes);
    if (!decoded.ok) return { ok: false, error: decoded.error, gasUsed: 0n };
    const saved = this.state;
    this.state = cloneState(saved);
    try {
      const ante = runAnte(decoded.tx, this.anteContext(this.height + 1, this.latestTimeMs(), true));
      if (!ante.ok) return { ok: false, error: ante.error, gasUsed: ante.gasUsed };
      this.applyAnte(this.state, ante.effects);
      const exec = this.executeMsgs(decoded.tx, this.height + 1);
      if (!exec.ok) return { ok: false, error: exec.error, gasUsed: ante.effects.gasUsed };
      return { ok: true, gasUsed: ante.effects.gasUsed, events: exec.events, log: '' };
    } finally {
      this.state = saved;
    }
  }

  private anteContext(height: number, blockTimeMs: number, simulate: boolean) {
    return {
      chainId: this.chainId,
      blockTimeMs,
      blockHeight: height,
      minGasPriceUpokt: this.minGasPrice,
      simulate,
      account: (a: string) => this.anteAccount(a),
      isUnorderedNonceUsed: (s: string, t: bigint) => this.state.unorderedNonces.has(nonceKey(s, t)),
      backend: this.backend,
    };
  }

  private applyAnte(target: MutableState, e: AnteEffects): void {
    const payer = target.accounts.get(e.feePayer);
    if (payer === undefined) {
      throw new LocalnetStateError(`fee payer ${e.feePayer} vanished after the ante check`);
    }
    payer.balanceUpokt -= e.feeUpokt;
    for (const s of e.sequenceBumps) target.accounts.get(s)!.sequence += 1n;
    for (const n of e.unorderedNonces)
      target.unorderedNonces.set(nonceKey(n.signer, n.timeoutNs), n.timeoutNs);
    for (const k of e.newPubKeys) target.accounts.get(k.address)!.pubKey = k.pubKey;
  }

  private deliverTx(tx: DecodedTx, height: number, blockTimeMs: number): TxResult {
    const ante = runAnte(tx, this.anteContext(height, blockTimeMs, false));
    if (!ante.ok) return failure(ante.error, tx.gasLimit, ante.gasUsed);
    this.applyAnte(this.state, ante.effects);
    const anteEvents: AbciEvent[] = [
      plainEvent('tx', [
        ['fee', `${tx.feeUpokt}upokt`],
        ['fee_payer', ante.effects.feePayer],
      ]),
      ...tx.signers.map((s) =>
        plainEvent('tx', [['acc_seq', `${s}/${this.state.accounts.get(s)!.sequence}`]]),
      ),
    ];
    const saved = cloneState(this.state);
    const exec = this.executeMsgs(tx, height);
    if (!exec.ok) {
      this.state = saved;
      return { ...failure(exec.error, tx.gasLimit, ante.effects.gasUsed), events: anteEvents };
    }
    return {
      code: 0,
      codespace: '',
      log: '',
      gasWanted: tx.gasLimit,
      gasUsed: ante.effects.gasUsed,
      events: [...anteEvents, ...exec.events],
    };
  }

  private executeMsgs(
    tx: DecodedTx,
    height: number,
  ): { ok: true; events: AbciEvent[] } | { ok: false; error: ChainError } {
    const events: AbciEvent[] = [];
    for (let i = 0; i < tx.msgs.length; i++) {
      const msg = tx.msgs[i]!;
      const r =
        msg.typeUrl === MSG_CREATE_CLAIM
          ? this.createClaim(msg.value, height)
          : this.submitProof(msg.value, height);
      if (!r.ok) return { ok: false, error: msgFailure(i, r.grpc, r.error) };
      events.push(
        plainEvent('message', [
          ['action', msg.typeUrl],
          ['sender', msg.value.supplierOperatorAddress],
          ['module', 'proof'],
          ['msg_index', String(i)],
        ]),
        ...r.events.map((e) => ({
          ...e,
          attributes: [...e.attributes, { key: 'msg_index', value: String(i) }],
        })),
      );
    }
    return { ok: true, events };
  }

  /** queryAndValidateSessionHeader: re-hydrate at start, compare the id, find the supplier. */
  private validateSessionHeader(
    header: pb.sessionTypes.SessionHeader,
    supplier: string,
  ): ChainError | undefined {
    const s = this.getSession(
      header.applicationAddress,
      header.serviceId,
      Number(header.sessionStartBlockHeight),
    );
    if (!s.ok) return { ...s.error, log: s.error.log };
    if (s.value.sessionId !== header.sessionId) {
      return proofError(
        PROOF.INVALID_SESSION_ID,
        `session ID does not match onchain session ID; expected "${s.value.sessionId}", got "${header.sessionId}"`,
      );
    }
    if (!s.value.suppliers.some((x) => x.operatorAddress === supplier)) {
      return proofError(
        PROOF.NOT_FOUND,
        `supplier operator address "${supplier}" not found in session ID "${header.sessionId}"`,
      );
    }
    return undefined;
  }

  private claimEventFields(claim: pb.proofTypes.Claim): Record<string, unknown> {
    const h = claim.sessionHeader!;
    const start = Number(h.sessionStartBlockHeight);
    const { sum, count } = parseClaimRoot(claim.rootHash);
    const target = this.difficultyAt(h.serviceId, start).targetHash;
    const shared = this.sharedParamsAt(start);
    const claimed = computeClaimedUpokt(sum, target, {
      compute_units_to_tokens_multiplier: shared.computeUnitsToTokensMultiplier,
      compute_unit_cost_granularity: shared.computeUnitCostGranularity,
    });
    return {
      num_relays: count,
      num_claimed_compute_units: sum,
      num_estimated_compute_units: estimatedFromDifficulty(sum, target),
      claimed_upokt: `${claimed}upokt`,
      service_id: h.serviceId,
      application_address: h.applicationAddress,
      session_end_block_height: h.sessionEndBlockHeight,
      claim_proof_status_int: claim.proofValidationStatus,
      supplier_operator_address: claim.supplierOperatorAddress,
      num_estimated_relays: estimatedFromDifficulty(count, target),
    };
  }

  private createClaim(msg: pb.proofTx.MsgCreateClaim, height: number): MsgOutcome {
    const header = msg.sessionHeader!;
    const supplier = msg.supplierOperatorAddress;
    const invalid = (error: ChainError): MsgOutcome => ({ ok: false, grpc: 'InvalidArgument', error });
    const sessionProblem = this.validateSessionHeader(header, supplier);
    if (sessionProblem !== undefined) return invalid(sessionProblem);
    const end = Number(header.sessionEndBlockHeight);
    const w = sessionWindows(sessionParamsOf(this.sharedParamsAt(end)), end);
    if (height < w.claim_window_open_height) {
      return {
        ok: false,
        grpc: 'FailedPrecondition',
        error: proofError(
          PROOF.CLAIM_OUTSIDE_OF_WINDOW,
          `current block height (${height}) is less than the session's earliest claim commit height (${w.claim_window_open_height})`,
        ),
      };
    }
    if (height > w.claim_window_close_height) {
      return {
        ok: false,
        grpc: 'FailedPrecondition',
        error: proofError(
          PROOF.CLAIM_OUTSIDE_OF_WINDOW,
          `current block height (${height}) is greater than session claim window close height (${w.claim_window_close_height})`,
        ),
      };
    }
    const { sum, count } = parseClaimRoot(msg.rootHash);
    const start = Number(header.sessionStartBlockHeight);
    const cupr = this.computeUnitsPerRelayAt(header.serviceId, start);
    if (cupr === undefined) {
      return {
        ok: false,
        grpc: 'NotFound',
        error: proofError(PROOF.SERVICE_NOT_FOUND, `service ${header.serviceId} not found`),
      };
    }
    if (sum !== count * cupr) {
      return invalid(
        proofError(
          PROOF.COMPUTE_UNITS_MISMATCH,
          `claim compute units: ${sum} is not equal to number of relays ${count} * compute units per relay ${cupr} for service ${header.serviceId}`,
        ),
      );
    }
    const key = claimKey(header.sessionId, supplier);
    const existing = this.state.claims.has(key);
    const claim: pb.proofTypes.Claim = {
      supplierOperatorAddress: supplier,
      sessionHeader: header,
      rootHash: Buffer.from(msg.rootHash),
      proofValidationStatus: pb.proofTypes.ClaimProofStatus.PENDING_VALIDATION,
    };
    this.state.claims.set(key, claim);
    return {
      ok: true,
      events: [
        typedEvent(
          existing ? 'pocket.proof.EventClaimUpdated' : 'pocket.proof.EventClaimCreated',
          this.claimEventFields(claim),
        ),
      ],
    };
  }

  /** The checks of EnsureWellFormedProof that precede the claim lookup. */
  private ensureWellFormedProof(msg: pb.proofTx.MsgSubmitProof, height: number): ChainError | undefined {
    const header = msg.sessionHeader!;
    const supplier = msg.supplierOperatorAddress;
    const sessionProblem = this.validateSessionHeader(header, supplier);
    if (sessionProblem !== undefined) return sessionProblem;
    const end = Number(header.sessionEndBlockHeight);
    const w = sessionWindows(sessionParamsOf(this.sharedParamsAt(end)), end);
    if (height < w.proof_window_open_height) {
      return proofError(
        PROOF.PROOF_OUTSIDE_OF_WINDOW,
        `current block height (${height}) is less than session's earliest proof commit height (${w.proof_window_open_height})`,
      );
    }
    if (height > w.proof_window_close_height) {
      return proofError(
        PROOF.PROOF_OUTSIDE_OF_WINDOW,
        `current block height (${height}) is greater than session proof window close height (${w.proof_window_close_height})`,
      );
    }
    if (msg.proof.length === 0)
      return proofError(PROOF.INVALID_PROOF, 'closest merkle proof cannot be empty');
    let relayBytes: Uint8Array;
    try {
      const proof = decompactClosestProof(decodeCompactClosestProof(msg.proof));
      const v = proof.closestValueHash;
      if (v === null || v.length < 16)
        return proofError(PROOF.INVALID_PROOF, 'closest value hash shorter than 16 bytes');
      relayBytes = v.subarray(0, v.length - 16);
    } catch (err) {
      return proofError(
        PROOF.INVALID_PROOF,
        `failed to unmarshal sparse compact merkle closest proof: ${(err as Error).message}`,
      );
    }
    const relay = decodeRelay(relayBytes);
    if (!relay.ok) return proofError(PROOF.INVALID_RELAY, `failed to unmarshal relay: ${relay.reason}`);
    const req = relay.value.req;
    const res = relay.value.res;
    if (req === undefined || req.meta?.sessionHeader === undefined || req.meta.signature.length === 0) {
      return proofError(
        PROOF.INVALID_RELAY_REQUEST,
        'relay request is missing its session header or signature',
      );
    }
    if (req.meta.supplierOperatorAddress !== supplier) {
      return proofError(PROOF.SUPPLIER_MISMATCH, 'supplier type mismatch');
    }
    if (
      res === undefined ||
      res.meta?.sessionHeader === undefined ||
      res.meta.supplierOperatorSignature.length === 0
    ) {
      return proofError(
        PROOF.INVALID_RELAY_RESPONSE,
        'relay response is missing its session header or signature',
      );
    }
    for (const [who, h] of [
      ['relay request', req.meta.sessionHeader],
      ['relay response', res.meta.sessionHeader],
    ] as const) {
      if (!sessionHeadersEqual(h, header)) {
        return proofError(
          PROOF.INVALID_RELAY,
          `${who} session header does not match the proof session header`,
        );
      }
    }
    const start = Number(header.sessionStartBlockHeight);
    const target = this.difficultyAt(header.serviceId, start).targetHash;
    const relayHash = sha256(relayBytes);
    if (!isRelayVolumeApplicable(relayHash, target)) {
      return proofError(
        PROOF.INVALID_RELAY_DIFFICULTY,
        `failed to validate relay difficulty for service ${header.serviceId} due to: relay hash ${bytesToHex(relayHash)} is not below target ${bytesToHex(target)}`,
      );
    }
    const claim = this.state.claims.get(claimKey(header.sessionId, supplier));
    if (claim === undefined) {
      return proofError(
        PROOF.CLAIM_NOT_FOUND,
        `no claim found for session ID "${header.sessionId}" and supplier "${supplier}"`,
      );
    }
    const ch = claim.sessionHeader!;
    if (ch.sessionStartBlockHeight !== header.sessionStartBlockHeight)
      return proofError(PROOF.INVALID_SESSION_START_HEIGHT, 'claim and proof session start heights differ');
    if (ch.sessionEndBlockHeight !== header.sessionEndBlockHeight)
      return proofError(PROOF.INVALID_SESSION_END_HEIGHT, 'claim and proof session end heights differ');
    if (ch.applicationAddress !== header.applicationAddress)
      return proofError(PROOF.INVALID_ADDRESS, 'claim and proof application addresses differ');
    if (ch.serviceId !== header.serviceId)
      return proofError(PROOF.INVALID_SERVICE, 'claim and proof service ids differ');
    return undefined;
  }

  private seedBlockHash(header: pb.sessionTypes.SessionHeader): Uint8Array {
    const end = Number(header.sessionEndBlockHeight);
    const w = sessionWindows(sessionParamsOf(this.sharedParamsAt(end)), end);
    return this.blockHash(w.proof_window_open_height - 1);
  }

  /** The proof requirement of a stored claim with the live proof params (chain.md §5). */
  proofRequirementFor(claim: pb.proofTypes.Claim): ProofRequirement {
    const h = claim.sessionHeader!;
    const start = Number(h.sessionStartBlockHeight);
    const shared = this.sharedParamsAt(start);
    return proofRequirement({
      supplierOperatorAddress: claim.supplierOperatorAddress,
      sessionHeader: h,
      rootHash: claim.rootHash,
      seedBlockHash: this.seedBlockHash(h),
      target: this.difficultyAt(h.serviceId, start).targetHash,
      pricing: {
        compute_units_to_tokens_multiplier: shared.computeUnitsToTokensMultiplier,
        compute_unit_cost_granularity: shared.computeUnitCostGranularity,
      },
      proofRequestProbability: this.proofParams.proofRequestProbability,
      proofRequirementThresholdUpokt: BigInt(this.proofParams.proofRequirementThreshold?.amount ?? '0'),
    });
  }

  private submitProof(msg: pb.proofTx.MsgSubmitProof, height: number): MsgOutcome {
    const header = msg.sessionHeader!;
    const supplier = msg.supplierOperatorAddress;
    const wellFormed = this.ensureWellFormedProof(msg, height);
    if (wellFormed !== undefined) return { ok: false, grpc: 'FailedPrecondition', error: wellFormed };
    const key = claimKey(header.sessionId, supplier);
    const claim = this.state.claims.get(key);
    if (claim === undefined)
      return { ok: false, grpc: 'FailedPrecondition', error: proofError(PROOF.CLAIM_NOT_FOUND) };
    const fee = BigInt(this.proofParams.proofSubmissionFee?.amount ?? '0');
    const acc = this.state.accounts.get(supplier);
    const spendable = acc?.balanceUpokt ?? 0n;
    if (spendable === 0n) {
      return {
        ok: false,
        grpc: 'FailedPrecondition',
        error: proofError(PROOF.NOT_ENOUGH_FUNDS, 'account has no spendable coins'),
      };
    }
    if (spendable <= fee) {
      return {
        ok: false,
        grpc: 'FailedPrecondition',
        error: proofError(
          PROOF.NOT_ENOUGH_FUNDS,
          `account has ${spendable}, but the proof submission fee is ${fee}upokt`,
        ),
      };
    }
    acc!.balanceUpokt -= fee;
    this.state.moduleBalances.set('proof', (this.state.moduleBalances.get('proof') ?? 0n) + fee);
    if (!this.proofRequirementFor(claim).required) {
      return { ok: false, grpc: 'FailedPrecondition', error: proofError(PROOF.PROOF_NOT_REQUIRED) };
    }
    const existing = this.state.proofs.has(key);
    this.state.proofs.set(key, {
      supplierOperatorAddress: supplier,
      sessionHeader: header,
      closestMerkleProof: Buffer.from(msg.proof),
    });
    return {
      ok: true,
      events: [
        typedEvent(
          existing ? 'pocket.proof.EventProofUpdated' : 'pocket.proof.EventProofSubmitted',
          this.claimEventFields(claim),
        ),
      ],
    };
  }

  // -------------------------------------------------------------------------------------------
  // EndBlockers

  /** EnsureValidProofSignaturesAndClosestPath; returns the failure reason or undefined. */
  private proofFailure(claim: pb.proofTypes.Claim, proof: pb.proofTypes.Proof): string | undefined {
    const header = proof.sessionHeader!;
    const supplierKey = this.state.accounts.get(proof.supplierOperatorAddress)?.pubKey;
    if (supplierKey === undefined) {
      return proofError(
        PROOF.PUBKEY_NOT_FOUND,
        `no public key for supplier operator ${proof.supplierOperatorAddress}`,
      ).log;
    }
    let closest;
    try {
      closest = decompactClosestProof(decodeCompactClosestProof(proof.closestMerkleProof));
    } catch (err) {
      return proofError(
        PROOF.INVALID_PROOF,
        `failed to decompact sparse merkle closest proof: ${(err as Error).message}`,
      ).log;
    }
    const v = closest.closestValueHash;
    const relay = v === null || v.length < 16 ? undefined : decodeRelay(v.subarray(0, v.length - 16));
    if (relay === undefined || !relay.ok || relay.value.req === undefined || relay.value.res === undefined) {
      return proofError(PROOF.INVALID_RELAY, 'failed to unmarshal relay').log;
    }
    const req = relay.value.req;
    const res = relay.value.res;
    const app = this.state.applications.get(header.applicationAddress);
    if (app === undefined)
      return proofError(PROOF.INVALID_RELAY_REQUEST, `application ${header.applicationAddress} not found`)
        .log;
    const ringAddresses = expectedRingAddresses(header.applicationAddress, app, header.sessionEndBlockHeight);
    const ringKeys: Uint8Array[] = [];
    for (const a of ringAddresses) {
      const key =
        a === PLACEHOLDER_RING_ADDRESS ? PLACEHOLDER_RING_PUBLIC_KEY : this.state.accounts.get(a)?.pubKey;
      if (key === undefined)
        return proofError(PROOF.INVALID_RELAY_REQUEST, `ring member ${a} has no public key`).log;
      ringKeys.push(key);
    }
    const ring = verifyRingSignature(
      this.backend,
      req.meta!.signature,
      relayRequestSignableHash(req),
      ringKeys,
    );
    if (!ring.ok)
      return proofError(
        PROOF.INVALID_RELAY_REQUEST,
        `error verifying relay request signature: ${ring.reason}`,
      ).log;
    const digest = supplierSignatureDigest(relayResponseSignableHash(res));
    if (!this.backend.ecdsaVerify(res.meta!.supplierOperatorSignature, digest, supplierKey)) {
      return proofError(PROOF.INVALID_RELAY_RESPONSE, 'invalid relay response signature').log;
    }
    const expectedPath = proofPath(this.seedBlockHash(header), header.sessionId);
    if (!equalBytes(closest.path, expectedPath)) {
      return proofError(
        PROOF.INVALID_PROOF,
        `the path of the proof provided (${bytesToHex(closest.path)}) does not match one expected by the onchain protocol (${bytesToHex(expectedPath)})`,
      ).log;
    }
    const verdict = verifyClosestProof(closest, claim.rootHash);
    if (!verdict.ok) return proofError(PROOF.INVALID_PROOF, 'invalid closest merkle proof').log;
    // The full byte-level pipeline must agree with the step-by-step checks above.
    const whole = checkClosestProofBytes(proof.closestMerkleProof, claim.rootHash, expectedPath);
    if (!whole.accepted)
      return proofError(PROOF.INVALID_PROOF, `invalid closest merkle proof: ${whole.rejection?.reason ?? ''}`)
        .log;
    return undefined;
  }

  private validateSubmittedProofs(height: number): AbciEvent[] {
    const events: AbciEvent[] = [];
    for (const [key, proof] of [...this.state.proofs]) {
      const claim = this.state.claims.get(key);
      this.state.proofs.delete(key);
      if (claim === undefined) continue;
      const reason = this.proofFailure(claim, proof);
      claim.proofValidationStatus =
        reason === undefined
          ? pb.proofTypes.ClaimProofStatus.VALIDATED
          : pb.proofTypes.ClaimProofStatus.INVALID;
      const h = claim.sessionHeader!;
      events.push(
        typedEvent('pocket.proof.EventProofValidityChecked', {
          block_height: BigInt(height),
          failure_reason: reason ?? '',
          service_id: h.serviceId,
          application_address: h.applicationAddress,
          session_end_block_height: h.sessionEndBlockHeight,
          claim_proof_status_int: claim.proofValidationStatus,
          supplier_operator_address: claim.supplierOperatorAddress,
        }),
      );
    }
    return events;
  }

  private credit(address: string, amount: bigint): void {
    let acc = this.state.accounts.get(address);
    if (acc === undefined) {
      acc = { address, accountNumber: this.nextAccountNumber++, sequence: 0n, balanceUpokt: 0n };
      this.state.accounts.set(address, acc);
    }
    acc.balanceUpokt += amount;
  }

  /**
   * TLM relay burn = mint: mints floor(settled × mint_ratio) and splits it by
   * mint_equals_burn_claim_distribution (each share floored, the DAO takes the remainder); the
   * supplier share goes to the service's revenue shareholders (each floored, the first takes the
   * remainder). The proposer share is kept in a module balance (there is no validator account).
   * Returns the minted amount.
   */
  private distributeMintEqualsBurn(
    settled: bigint,
    h: pb.sessionTypes.SessionHeader,
    supplier: pb.sharedSupplier.Supplier | undefined,
  ): bigint {
    const minted = mulRat(settled, this.tokenomicsParams.mintRatio);
    const d = this.tokenomicsParams.mintEqualsBurnClaimDistribution!;
    const supplierAmount = mulRat(minted, d.supplier);
    const proposerAmount = mulRat(minted, d.proposer);
    const sourceOwnerAmount = mulRat(minted, d.sourceOwner);
    const applicationAmount = mulRat(minted, d.application);
    const daoAmount = minted - supplierAmount - proposerAmount - sourceOwnerAmount - applicationAmount;
    const shares = supplier?.services.find((s) => s.serviceId === h.serviceId)?.revShare ?? [];
    if (shares.length > 0) {
      let distributed = 0n;
      const parts = shares.map((s) => {
        const part = (supplierAmount * s.revSharePercentage) / 100n;
        distributed += part;
        return part;
      });
      parts[0]! += supplierAmount - distributed;
      shares.forEach((s, i) => this.credit(s.address, parts[i]!));
    } else if (supplier !== undefined) {
      this.credit(supplier.ownerAddress, supplierAmount);
    }
    const owner = this.services.get(h.serviceId)?.ownerAddress;
    if (owner !== undefined) this.credit(owner, sourceOwnerAmount);
    this.credit(h.applicationAddress, applicationAmount);
    const dao = this.tokenomicsParams.daoRewardAddress;
    if (dao !== '') this.credit(dao, daoAmount);
    else this.state.moduleBalances.set('dao', (this.state.moduleBalances.get('dao') ?? 0n) + daoAmount);
    this.state.moduleBalances.set(
      'proposer',
      (this.state.moduleBalances.get('proposer') ?? 0n) + proposerAmount,
    );
    return minted;
  }

  /**
   * Settles (or expires) every claim whose proof window closes at `height`. Mint equals burn: the
   * application's stake is burned by the claimed amount (capped at its stake) and the supplier's
   * revenue shareholders are credited. Services with settled claims get a new difficulty,
   * effective at the next session start.
   */
  private settlePendingClaims(height: number): AbciEvent[] {
    const events: AbciEvent[] = [];
    const relaysPerService = new Map<string, bigint>();
    const due = [...this.state.claims].filter(([, c]) => {
      const end = Number(c.sessionHeader!.sessionEndBlockHeight);
      return (
        sessionWindows(sessionParamsOf(this.sharedParamsAt(end)), end).proof_window_close_height === height
      );
    });
    due.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    for (const [key, claim] of due) {
      const h = claim.sessionHeader!;
      const requirement = this.proofRequirementFor(claim);
      const fields = this.claimEventFields(claim);
      this.state.claims.delete(key);
      if (requirement.required && claim.proofValidationStatus !== pb.proofTypes.ClaimProofStatus.VALIDATED) {
        const reason =
          claim.proofValidationStatus === pb.proofTypes.ClaimProofStatus.INVALID
            ? pb.tokenomicsEvent.ClaimExpirationReason.PROOF_INVALID
            : pb.tokenomicsEvent.ClaimExpirationReason.PROOF_MISSING;
        events.push(
          typedEvent('pocket.tokenomics.EventClaimExpired', {
            expiration_reason: reasonName(reason),
            ...fields,
          }),
        );
        const supplier = this.state.suppliers.get(claim.supplierOperatorAddress);
        if (supplier !== undefined) {
          const penalty = BigInt(this.proofParams.proofMissingPenalty?.amount ?? '0');
          const stake = BigInt(supplier.stake?.amount ?? '0');
          const after = stake > penalty ? stake - penalty : 0n;
          supplier.stake = Coin(after);
          events.push(
            typedEvent('pocket.tokenomics.EventSupplierSlashed', {
              proof_missing_penalty: `${stake - after}upokt`,
              service_id: h.serviceId,
              application_address: h.applicationAddress,
              session_end_block_height: h.sessionEndBlockHeight,
              claim_proof_status_int: claim.proofValidationStatus,
              supplier_operator_address: claim.supplierOperatorAddress,
              supplier_stake_after_slash: `${after}upokt`,
            }),
          );
        }
        continue;
      }
      const claimed = requirement.claimedUpokt;
      const app = this.state.applications.get(h.applicationAddress);
      const appStake = BigInt(app?.stake?.amount ?? '0');
      // Overserviced claims settle at most the application's remaining stake.
      const settled = claimed < appStake ? claimed : appStake;
      if (app !== undefined) app.stake = Coin(appStake - settled);
      const supplier = this.state.suppliers.get(claim.supplierOperatorAddress);
      const minted = this.distributeMintEqualsBurn(settled, h, supplier);
      relaysPerService.set(
        h.serviceId,
        (relaysPerService.get(h.serviceId) ?? 0n) + parseClaimRoot(claim.rootHash).count,
      );
      events.push(
        typedEvent('pocket.tokenomics.EventClaimSettled', {
          proof_requirement_int:
            requirement.reason === 'THRESHOLD' ? 2 : requirement.reason === 'PROBABILISTIC' ? 1 : 0,
          ...fields,
          settled_upokt: `${settled}upokt`,
          mint_ratio: String(this.tokenomicsParams.mintRatio),
          session_id: h.sessionId,
          supplier_owner_address: supplier?.ownerAddress ?? '',
          minted_upokt: `${minted}upokt`,
          overservicing_loss_upokt: `${claimed - settled}upokt`,
          deflation_loss_upokt: `${settled - minted}upokt`,
        }),
      );
    }
    const live = sessionParamsOf(this.sharedParamsAt(height));
    const nextStart = sessionWindows(live, height).next_session_start_height;
    for (const serviceId of [...relaysPerService.keys()].sort()) {
      const prev = this.currentDifficulty(serviceId);
      const ema = computeRelaysEma(prev.numRelaysEma, relaysPerService.get(serviceId)!);
      const target = computeNewDifficultyTargetHash(
        BASE_RELAY_DIFFICULTY_TARGET,
        this.serviceParams.targetNumRelays,
        ema,
      );
      const hist = this.difficultyHistory.get(serviceId) ?? [];
      if (hist.length === 0) hist.push({ ...prev, blockHeight: BigInt(height) });
      const next = {
        serviceId,
        blockHeight: BigInt(nextStart),
        numRelaysEma: ema,
        targetHash: Buffer.from(target),
      };
      const same = hist.findIndex((d) => d.blockHeight === next.blockHeight);
      if (same >= 0) hist.splice(same, 1);
      hist.push(next);
      this.difficultyHistory.set(serviceId, hist);
      events.push(
        typedEvent('pocket.service.EventRelayMiningDifficultyUpdated', {
          service_id: serviceId,
          prev_target_hash_hex_encoded: bytesToHex(prev.targetHash),
          new_target_hash_hex_encoded: bytesToHex(target),
          prev_num_relays_ema: prev.numRelaysEma,
          new_num_relays_ema: ema,
        }),
      );
    }
    return events;
  }

  // -------------------------------------------------------------------------------------------
  // Test controls

  /** Sets the live proof params (a governance change; takes effect immediately, as upstream). */
  setProofParams(change: Partial<pb.proofParams.Params>): void {
    this.proofParams = { ...this.proofParams, ...change };
  }

  /**
   * Records a relay mining difficulty for a service effective at `height` (what the tokenomics
   * EndBlocker writes after settlement), for tests that need a non-base target.
   */
  setRelayMiningDifficulty(
    serviceId: string,
    height: number,
    targetHash: Uint8Array,
    numRelaysEma: bigint,
  ): void {
    if (targetHash.length !== 32)
      throw new LocalnetControlError(`target hash must be 32 bytes, got ${targetHash.length}`);
    const hist = (this.difficultyHistory.get(serviceId) ?? []).filter(
      (d) => Number(d.blockHeight) !== height,
    );
    hist.push({ serviceId, blockHeight: BigInt(height), numRelaysEma, targetHash: Buffer.from(targetHash) });
    hist.sort((a, b) => Number(a.blockHeight - b.blockHeight));
    this.difficultyHistory.set(serviceId, hist);
  }

  /** Forces the next `count` broadcasts to be rejected with `error`. */
  rejectNextBroadcasts(count: number, error: ChainError): void {
    if (!Number.isInteger(count) || count < 1)
      throw new LocalnetControlError(`reject count must be a positive integer, got ${count}`);
    this.faults.rejectNext = { count, error };
  }
}

type MsgOutcome = { ok: true; events: AbciEvent[] } | { ok: false; grpc: GrpcCode; error: ChainError };

/**
 * floor(amount × f) with f read as the decimal it prints as (upstream Float64ToRat formats the
 * float with strconv 'f', -1 and parses that decimal exactly).
 */
export function mulRat(amount: bigint, f: number): bigint {
  if (!Number.isFinite(f) || f < 0)
    throw new LocalnetStateError(`ratio ${f} is not a finite non-negative number`);
  const [mantissa, expPart] = f.toString().split('e');
  const exp = expPart === undefined ? 0 : Number(expPart);
  const [whole, frac = ''] = mantissa!.split('.');
  let num = BigInt(whole! + frac);
  let den = 10n ** BigInt(frac.length);
  if (exp > 0) num *= 10n ** BigInt(exp);
  else if (exp < 0) den *= 10n ** BigInt(-exp);
  return (amount * num) / den;
}

function reasonName(r: pb.tokenomicsEvent.ClaimExpirationReason): string {
  return pb.tokenomicsEvent.ClaimExpirationReason[r];
}

function failure(error: ChainError, gasWanted: bigint, gasUsed: bigint): TxResult {
  return { code: error.code, codespace: error.codespace, log: error.log, gasWanted, gasUsed, events: [] };
}
