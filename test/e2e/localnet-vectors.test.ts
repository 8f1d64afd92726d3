/**
 * The simulator's session, window and proof-requirement numbers against session-windows.json:
 * for each vector the chain is started with the vector's shared params (initial height at the
 * session start, block hashes = the vectors' synthetic SHA-256("vectors-block-<h>")), and the
 * answers of its ParamsAtHeight and GetSession queries (through abci_query bytes) and its windows,
 * session ids, proof paths and proof-requirement draws must equal the vector.
 */
import { describe, expect, it } from 'vitest';
import { bytesToHex, hexToBytes } from '../../core/index.js';
import {
  addressFromPrivateKey,
  pb,
  privateKeyFromSecret,
  proofPath,
  sessionWindows,
  sha256,
} from '../../protocol/index.js';
import { selectBackend } from '../../rings/index.js';
import { LocalChain, abciQuery, parseGenesis, sessionParamsOf } from '../../localnet/index.js';
import { asBigInt, caseTitle, hasVectorFile, loadVectors } from '../helpers/vectors.js';

const FILE = 'session-windows.json';
const v: any = hasVectorFile(FILE) ? loadVectors(FILE) : undefined;
const backend = selectBackend('native');
const SUPPLIER = addressFromPrivateKey(
  privateKeyFromSecret(new TextEncoder().encode('localnet/vector-supplier')),
);
const DEFAULT_APP = addressFromPrivateKey(
  privateKeyFromSecret(new TextEncoder().encode('localnet/vector-app')),
);

const syntheticHash = (h: number): Uint8Array => sha256(new TextEncoder().encode(`vectors-block-${h}`));

function sharedOf(name: string): Record<string, unknown> {
  const set = (v.param_sets as any[]).find((p) => p.name === name);
  if (set === undefined) throw new Error(`param set ${name} missing`);
  return Object.fromEntries(Object.entries(set.shared_params).map(([k, x]) => [k, asBigInt(x)]));
}

/** A chain with `paramSet`'s shared params whose first block is `initialHeight`. */
function chainFor(
  paramSet: string,
  initialHeight: number,
  app = DEFAULT_APP,
  services = ['anvil', 'eth-mainnet'],
): LocalChain {
  const genesis = parseGenesis({
    chain_id: 'pocket',
    initial_height: initialHeight,
    params: { shared: sharedOf(paramSet) },
    accounts: [
      { address: app, balance: 1 },
      { address: SUPPLIER, balance: 1 },
    ],
    services: services.map((id) => ({ id, compute_units_per_relay: 1, owner_address: SUPPLIER })),
    applications: [{ address: app, stake: 1_000_000, service_ids: services }],
    suppliers: [
      {
        operator_address: SUPPLIER,
        stake: 1_000_000,
        services: services.map((id) => ({
          service_id: id,
          endpoints: [{ url: 'http://127.0.0.1:9/', rpc_type: 'JSON_RPC' }],
        })),
      },
    ],
  });
  return new LocalChain(genesis, { backend, blockHasher: (h) => syntheticHash(h) });
}

function query<T>(chain: LocalChain, path: string, data: Uint8Array, decode: (b: Uint8Array) => T): T {
  const r = abciQuery(chain, path, data);
  if (!r.ok) throw new Error(`${path}: ${r.error.log}`);
  return decode(r.value);
}

function paramsAtHeight(chain: LocalChain, h: number): pb.sharedParams.Params {
  return query(
    chain,
    '/pocket.shared.Query/ParamsAtHeight',
    pb.sharedQuery.QueryParamsAtHeightRequest.encode({ height: BigInt(h) }).finish(),
    (b) => pb.sharedQuery.QueryParamsAtHeightResponse.decode(b),
  ).params!;
}

function getSession(chain: LocalChain, app: string, serviceId: string, h: number): pb.sessionTypes.Session {
  return query(
    chain,
    '/pocket.session.Query/GetSession',
    pb.sessionQuery.QueryGetSessionRequest.encode({
      applicationAddress: app,
      serviceId,
      blockHeight: BigInt(h),
    }).finish(),
    (b) => pb.sessionQuery.QueryGetSessionResponse.decode(b),
  ).session!;
}

const WINDOW_KEYS = [
  'session_start_height',
  'session_end_height',
  'session_number',
  'grace_period_end_height',
  'claim_window_open_height',
  'claim_window_close_height',
  'proof_window_open_height',
  'proof_window_close_height',
  'next_session_start_height',
  'settlement_height',
  'session_end_to_proof_window_close_blocks',
  'num_pending_sessions',
  'is_session_start',
  'is_session_end',
] as const;

describe.runIf(v !== undefined)(`localnet vs ${FILE}`, () => {
  (v?.windows as any[] | undefined)?.forEach((c, i) => {
    const h = Number(asBigInt(c.query_height));
    if (h < 1) return; // degenerate heights are not chain heights
    it(caseTitle(`${FILE}:windows`, i, `${c.param_set} h=${h}`), () => {
      const start = Number(asBigInt(c.session_start_height));
      const chain = chainFor(c.param_set, start);
      chain.advanceTo(h);
      const params = paramsAtHeight(chain, h);
      const expectedParams = sharedOf(c.param_set);
      expect({
        num_blocks_per_session: params.numBlocksPerSession,
        grace_period_end_offset_blocks: params.gracePeriodEndOffsetBlocks,
        claim_window_open_offset_blocks: params.claimWindowOpenOffsetBlocks,
        claim_window_close_offset_blocks: params.claimWindowCloseOffsetBlocks,
        proof_window_open_offset_blocks: params.proofWindowOpenOffsetBlocks,
        proof_window_close_offset_blocks: params.proofWindowCloseOffsetBlocks,
        compute_units_to_tokens_multiplier: params.computeUnitsToTokensMultiplier,
        compute_unit_cost_granularity: params.computeUnitCostGranularity,
        session_grid_anchor_height: params.sessionGridAnchorHeight,
        session_number_at_anchor: params.sessionNumberAtAnchor,
      }).toEqual(expectedParams);
      const w = sessionWindows(sessionParamsOf(params), h);
      const expected = Object.fromEntries(
        WINDOW_KEYS.map((k) => [k, typeof c[k] === 'boolean' ? c[k] : Number(asBigInt(c[k]))]),
      );
      expect(Object.fromEntries(WINDOW_KEYS.map((k) => [k, w[k]]))).toEqual(expected);
      const session = getSession(chain, DEFAULT_APP, 'anvil', h);
      expect({
        start: session.header!.sessionStartBlockHeight,
        end: session.header!.sessionEndBlockHeight,
        number: session.sessionNumber,
        n: session.numBlocksPerSession,
      }).toEqual({
        start: asBigInt(c.session_start_height),
        end: asBigInt(c.session_end_height),
        number: asBigInt(c.session_number),
        n: expectedParams['num_blocks_per_session'],
      });
    });
  });

  (v?.session_ids as any[] | undefined)?.forEach((c, i) => {
    if (!(v.param_sets as any[]).some((p) => p.name === c.param_set)) return;
    it(caseTitle(`${FILE}:session_ids`, i, `${c.param_set} h=${c.query_height}`), () => {
      const h = Number(asBigInt(c.query_height));
      const start = Number(asBigInt(c.session_start_height));
      const chain = chainFor(c.param_set, start, c.application_address, [c.service_id]);
      chain.advanceTo(h);
      expect(bytesToHex(chain.blockHash(start))).toBe(c.start_block_hash_hex);
      const session = getSession(chain, c.application_address, c.service_id, h);
      expect(session.header).toEqual({
        applicationAddress: c.application_address,
        serviceId: c.service_id,
        sessionId: c.session_id,
        sessionStartBlockHeight: asBigInt(c.session_start_height),
        sessionEndBlockHeight: asBigInt(c.session_end_height),
      });
      expect(session.sessionNumber).toBe(asBigInt(c.session_number));
    });
  });

  (v?.proof_requirement as any[] | undefined)?.forEach((c, i) => {
    it(caseTitle(`${FILE}:proof_requirement`, i, `${c.param_set} relays=${c.num_relays}`), () => {
      const hdr = c.session_header;
      const start = Number(asBigInt(hdr.session_start_block_height));
      const seed = Number(asBigInt(c.proof_requirement_seed_block_height));
      const chain = chainFor(c.param_set, start, hdr.application_address, [hdr.service_id]);
      chain.advanceTo(seed);
      expect(bytesToHex(chain.blockHash(seed))).toBe(c.seed_block_hash_hex);
      chain.setRelayMiningDifficulty(
        hdr.service_id,
        start,
        hexToBytes(c.relay_difficulty_target_hash_hex),
        100_000n,
      );
      // A threshold no claim reaches, so the draw is always evaluated.
      chain.setProofParams({ proofRequirementThreshold: { denom: 'upokt', amount: '18446744073709551615' } });
      const claim: pb.proofTypes.Claim = {
        supplierOperatorAddress: c.supplier_operator_address,
        sessionHeader: {
          applicationAddress: hdr.application_address,
          serviceId: hdr.service_id,
          sessionId: hdr.session_id,
          sessionStartBlockHeight: asBigInt(hdr.session_start_block_height),
          sessionEndBlockHeight: asBigInt(hdr.session_end_block_height),
        },
        rootHash: Buffer.from(hexToBytes(c.root_hash_hex)),
        proofValidationStatus: pb.proofTypes.ClaimProofStatus.PENDING_VALIDATION,
      };
      const r = chain.proofRequirementFor(claim);
      expect({ claimed: r.claimedUpokt, seed: r.seedInt64, sample: r.sample }).toEqual({
        claimed: asBigInt(c.claimed_upokt),
        seed: asBigInt(c.go_varint_seed),
        sample: c.sample_value,
      });
      expect(bytesToHex(proofPath(chain.blockHash(seed), hdr.session_id))).toBe(c.proof_path_hex);
    });
  });
});
