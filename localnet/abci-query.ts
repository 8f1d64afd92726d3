/**
 * abci_query routing: `path` is a gRPC full method name, `data` the protobuf request; the answer
 * is the protobuf response, or an error with codespace, code and log (chain.md §9).
 */
import { QueryAccountRequest, QueryAccountResponse } from 'cosmjs-types/cosmos/auth/v1beta1/query';
import { BaseAccount } from 'cosmjs-types/cosmos/auth/v1beta1/auth';
import { QueryBalanceRequest, QueryBalanceResponse } from 'cosmjs-types/cosmos/bank/v1beta1/query';
import { SimulateRequest, SimulateResponse } from 'cosmjs-types/cosmos/tx/v1beta1/service';
import { PubKey } from 'cosmjs-types/cosmos/crypto/secp256k1/keys';
import { AuthInfo, TxBody, TxRaw } from 'cosmjs-types/cosmos/tx/v1beta1/tx';
import { pb } from '../protocol/index.js';
import { PROOF, SDK, proofError, sdkError, type ChainError } from './chain-errors.js';
import type { LocalChain } from './chain.js';
import { SECP256K1_PUBKEY_TYPE } from './tx.js';

export type QueryAnswer = { ok: true; value: Uint8Array } | { ok: false; error: ChainError };

/** A query handler's gRPC status error (what the keeper returns). */
interface GrpcStatus {
  grpc: 'NotFound' | 'InvalidArgument' | 'FailedPrecondition' | 'Internal' | 'Unknown';
  message: string;
}

/**
 * baseapp gRPCErrorToSDKError (Cosmos SDK 0.53): NotFound → sdk/22 "key not found",
 * InvalidArgument and FailedPrecondition → sdk/18 "invalid request", anything else → sdk/6
 * "unknown request"; the log is the wrapped status text.
 */
export function grpcToAbci(status: GrpcStatus): ChainError {
  const sdk =
    status.grpc === 'NotFound'
      ? SDK.KEY_NOT_FOUND
      : status.grpc === 'InvalidArgument' || status.grpc === 'FailedPrecondition'
        ? SDK.INVALID_REQUEST
        : SDK.UNKNOWN_REQUEST;
  return sdkError(sdk, `rpc error: code = ${status.grpc} desc = ${status.message}`);
}

interface Codec<Req, Res> {
  req: { decode(b: Uint8Array): Req };
  res: { encode(m: Res): { finish(): Uint8Array } };
}

type Handler = (chain: LocalChain, data: Uint8Array) => QueryAnswer;

function route<Req, Res>(
  codec: Codec<Req, Res>,
  fn: (chain: LocalChain, req: Req) => Res | GrpcStatus,
): Handler {
  return (chain, data) => {
    let req: Req;
    try {
      req = codec.req.decode(data);
    } catch (err) {
      return { ok: false, error: grpcToAbci({ grpc: 'InvalidArgument', message: (err as Error).message }) };
    }
    const out = fn(chain, req);
    if (isGrpcStatus(out)) return { ok: false, error: grpcToAbci(out) };
    return { ok: true, value: codec.res.encode(out).finish() };
  };
}

function isGrpcStatus(x: unknown): x is GrpcStatus {
  return typeof x === 'object' && x !== null && 'grpc' in x && 'message' in x;
}

const notFound = (message: string): GrpcStatus => ({ grpc: 'NotFound', message });
const internal = (e: ChainError): GrpcStatus => ({ grpc: 'Internal', message: e.log });

const HANDLERS: Record<string, Handler> = {
  '/pocket.session.Query/GetSession': route(
    { req: pb.sessionQuery.QueryGetSessionRequest, res: pb.sessionQuery.QueryGetSessionResponse },
    (chain, r) => {
      const s = chain.getSession(r.applicationAddress, r.serviceId, Number(r.blockHeight));
      return s.ok ? { session: s.value } : internal(s.error);
    },
  ),
  '/pocket.session.Query/Params': route(
    { req: pb.sessionQuery.QueryParamsRequest, res: pb.sessionQuery.QueryParamsResponse },
    (chain) => ({ params: chain.sessionParams }),
  ),
  '/pocket.shared.Query/Params': route(
    { req: pb.sharedQuery.QueryParamsRequest, res: pb.sharedQuery.QueryParamsResponse },
    (chain) => ({ params: chain.sharedParams }),
  ),
  '/pocket.shared.Query/ParamsAtHeight': route(
    { req: pb.sharedQuery.QueryParamsAtHeightRequest, res: pb.sharedQuery.QueryParamsAtHeightResponse },
    (chain, r) => ({ params: chain.sharedParamsAt(Number(r.height)) }),
  ),
  '/pocket.application.Query/Application': route(
    {
      req: pb.applicationQuery.QueryGetApplicationRequest,
      res: pb.applicationQuery.QueryGetApplicationResponse,
    },
    (chain, r) => {
      const app = chain.application(r.address);
      return app ? { application: app } : notFound(`application ${r.address} not found`);
    },
  ),
  '/pocket.application.Query/Params': route(
    { req: pb.applicationQuery.QueryParamsRequest, res: pb.applicationQuery.QueryParamsResponse },
    (chain) => ({ params: chain.applicationParams }),
  ),
  '/pocket.gateway.Query/Gateway': route(
    { req: pb.gatewayQuery.QueryGetGatewayRequest, res: pb.gatewayQuery.QueryGetGatewayResponse },
    (chain, r) => {
      const gw = chain.gateway(r.address);
      return gw ? { gateway: gw } : notFound(`gateway ${r.address} not found`);
    },
  ),
  '/pocket.supplier.Query/Supplier': route(
    { req: pb.supplierQuery.QueryGetSupplierRequest, res: pb.supplierQuery.QueryGetSupplierResponse },
    (chain, r) => {
      const s = chain.supplier(r.operatorAddress);
      if (s === undefined) return notFound(`supplier with operator address: "${r.operatorAddress}"`);
      return { supplier: r.dehydrated ? { ...s, serviceConfigHistory: [] } : s };
    },
  ),
  '/pocket.supplier.Query/Params': route(
    { req: pb.supplierQuery.QueryParamsRequest, res: pb.supplierQuery.QueryParamsResponse },
    (chain) => ({ params: chain.supplierParams }),
  ),
  '/pocket.service.Query/Service': route(
    { req: pb.serviceQuery.QueryGetServiceRequest, res: pb.serviceQuery.QueryGetServiceResponse },
    (chain, r) => {
      const s = chain.service(r.id);
      return s ? { service: s } : notFound(`service ID not found: "${r.id}"`);
    },
  ),
  '/pocket.service.Query/Params': route(
    { req: pb.serviceQuery.QueryParamsRequest, res: pb.serviceQuery.QueryParamsResponse },
    (chain) => ({ params: chain.serviceParams }),
  ),
  '/pocket.service.Query/RelayMiningDifficulty': route(
    {
      req: pb.serviceQuery.QueryGetRelayMiningDifficultyRequest,
      res: pb.serviceQuery.QueryGetRelayMiningDifficultyResponse,
    },
    (chain, r) => ({ relayMiningDifficulty: chain.currentDifficulty(r.serviceId) }),
  ),
  '/pocket.service.Query/RelayMiningDifficultyAtHeight': route(
    {
      req: pb.serviceQuery.QueryGetRelayMiningDifficultyAtHeightRequest,
      res: pb.serviceQuery.QueryGetRelayMiningDifficultyAtHeightResponse,
    },
    (chain, r) => ({ relayMiningDifficulty: chain.difficultyAt(r.serviceId, Number(r.blockHeight)) }),
  ),
  '/pocket.service.Query/ComputeUnitsPerRelayAtHeight': route(
    {
      req: pb.serviceQuery.QueryComputeUnitsPerRelayAtHeightRequest,
      res: pb.serviceQuery.QueryComputeUnitsPerRelayAtHeightResponse,
    },
    (chain, r) => {
      const cupr = chain.computeUnitsPerRelayAt(r.serviceId, Number(r.blockHeight));
      return cupr === undefined
        ? notFound(`service ID not found: "${r.serviceId}"`)
        : { computeUnitsPerRelay: cupr };
    },
  ),
  '/pocket.proof.Query/Params': route(
    { req: pb.proofQuery.QueryParamsRequest, res: pb.proofQuery.QueryParamsResponse },
    (chain) => ({ params: chain.proofParams }),
  ),
  '/pocket.proof.Query/Claim': route(
    { req: pb.proofQuery.QueryGetClaimRequest, res: pb.proofQuery.QueryGetClaimResponse },
    (chain, r) => {
      const c = chain.claim(r.sessionId, r.supplierOperatorAddress);
      return c
        ? { claim: c }
        : notFound(
            proofError(
              PROOF.CLAIM_NOT_FOUND,
              `session ID ${JSON.stringify(r.sessionId)} and supplier ${JSON.stringify(r.supplierOperatorAddress)}`,
            ).log,
          );
    },
  ),
  '/pocket.proof.Query/AllClaims': route(
    { req: pb.proofQuery.QueryAllClaimsRequest, res: pb.proofQuery.QueryAllClaimsResponse },
    (chain, r) => ({
      claims: chain
        .claims()
        .filter(
          (c) =>
            (r.supplierOperatorAddress === undefined ||
              c.supplierOperatorAddress === r.supplierOperatorAddress) &&
            (r.sessionId === undefined || c.sessionHeader?.sessionId === r.sessionId) &&
            (r.sessionEndHeight === undefined ||
              c.sessionHeader?.sessionEndBlockHeight === r.sessionEndHeight),
        ),
      pagination: { nextKey: Buffer.alloc(0), total: 0n },
    }),
  ),
  '/pocket.proof.Query/Proof': route(
    { req: pb.proofQuery.QueryGetProofRequest, res: pb.proofQuery.QueryGetProofResponse },
    (chain, r) => {
      const p = chain
        .proofs()
        .find(
          (x) =>
            x.sessionHeader?.sessionId === r.sessionId &&
            x.supplierOperatorAddress === r.supplierOperatorAddress,
        );
      return p
        ? { proof: p }
        : notFound(
            proofError(
              PROOF.PROOF_NOT_FOUND,
              `session ID ${JSON.stringify(r.sessionId)} and supplier ${JSON.stringify(r.supplierOperatorAddress)}`,
            ).log,
          );
    },
  ),
  '/pocket.proof.Query/AllProofs': route(
    { req: pb.proofQuery.QueryAllProofsRequest, res: pb.proofQuery.QueryAllProofsResponse },
    (chain, r) => ({
      proofs: chain
        .proofs()
        .filter(
          (p) =>
            r.supplierOperatorAddress === undefined ||
            p.supplierOperatorAddress === r.supplierOperatorAddress,
        ),
      pagination: { nextKey: Buffer.alloc(0), total: 0n },
    }),
  ),
  '/pocket.tokenomics.Query/Params': route(
    { req: pb.tokenomicsQuery.QueryParamsRequest, res: pb.tokenomicsQuery.QueryParamsResponse },
    (chain) => ({ params: chain.tokenomicsParams }),
  ),
  '/cosmos.auth.v1beta1.Query/Account': route(
    { req: QueryAccountRequest, res: QueryAccountResponse },
    (chain, r) => {
      const acc = chain.account(r.address);
      if (acc === undefined) return notFound(`account ${r.address} not found`);
      const base: BaseAccount = {
        address: acc.address,
        accountNumber: acc.accountNumber,
        sequence: acc.sequence,
        ...(acc.pubKey
          ? { pubKey: { typeUrl: SECP256K1_PUBKEY_TYPE, value: PubKey.encode({ key: acc.pubKey }).finish() } }
          : {}),
      };
      return {
        account: { typeUrl: '/cosmos.auth.v1beta1.BaseAccount', value: BaseAccount.encode(base).finish() },
      };
    },
  ),
  '/cosmos.bank.v1beta1.Query/Balance': route(
    { req: QueryBalanceRequest, res: QueryBalanceResponse },
    (chain, r) => ({
      balance: { denom: r.denom, amount: r.denom === 'upokt' ? chain.balance(r.address).toString() : '0' },
    }),
  ),
  '/cosmos.tx.v1beta1.Service/Simulate': route(
    { req: SimulateRequest, res: SimulateResponse },
    (chain, r) => {
      const bytes =
        r.txBytes.length > 0
          ? r.txBytes
          : r.tx !== undefined
            ? TxRaw.encode({
                bodyBytes: r.tx.body ? TxBody.encode(r.tx.body).finish() : new Uint8Array(0),
                authInfoBytes: r.tx.authInfo ? AuthInfo.encode(r.tx.authInfo).finish() : new Uint8Array(0),
                signatures: r.tx.signatures,
              }).finish()
            : new Uint8Array(0);
      const sim = chain.simulate(bytes);
      // x/tx Simulate: status Unknown with the tx error and the gas figures.
      if (!sim.ok) {
        return {
          grpc: 'Unknown',
          message: `${sim.error.log} With gas wanted: '0' and gas used: '${sim.gasUsed}' `,
        };
      }
      return {
        gasInfo: { gasWanted: 0n, gasUsed: sim.gasUsed },
        result: {
          data: new Uint8Array(0),
          log: sim.log,
          events: sim.events.map((e) => ({
            type: e.type,
            attributes: e.attributes.map((a) => ({ key: a.key, value: a.value, index: a.index ?? false })),
          })),
          msgResponses: [],
        },
      };
    },
  ),
};

export const QUERY_PATHS: readonly string[] = Object.keys(HANDLERS);

export function abciQuery(chain: LocalChain, path: string, data: Uint8Array): QueryAnswer {
  const h = HANDLERS[path];
  if (h === undefined) return { ok: false, error: sdkError(SDK.UNKNOWN_REQUEST, 'unknown query path') };
  return h(chain, data);
}
