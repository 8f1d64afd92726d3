/**
 * session-windows.json: session grid and windows, earliest commit heights, session ids, supplier
 * selection, proof requirement (Go math/rand draw), claimed upokt, difficulty targets and EMA,
 * volume applicability. One test per vector case.
 */
import { describe, expect, it } from 'vitest';
import { bytesToHex, hexToBytes } from '../../core/index.js';
import {
  GoRandSource,
  claimBytes,
  claimedUpokt,
  computeNewDifficultyTargetHash,
  computeRelaysEma,
  earliestClaimCommitHeight,
  earliestProofCommitHeight,
  estimatedFromDifficulty,
  goVarint,
  isRelayVolumeApplicable,
  parseClaimRoot,
  proofPath,
  proofRequirement,
  proofRequirementSeed,
  proofSeedBlockHeight,
  relayDifficultyMultiplier,
  seededInt63,
  selectSessionSuppliers,
  sessionId,
  sessionIdPreimage,
  sessionWindows,
  supplierSelectionWeight,
  BASE_RELAY_DIFFICULTY_TARGET,
  type SessionParams,
} from '../../protocol/index.js';
import { asBigInt, caseTitle, hasVectorFile, loadVectors } from '../helpers/vectors.js';

const FILE = 'session-windows.json';

const v: any = hasVectorFile(FILE) ? loadVectors(FILE) : undefined;

function paramsNamed(name: string): { session: SessionParams; cuttm: bigint; granularity: bigint } {
  const set = (v.param_sets as any[]).find((p) => p.name === name);
  if (set === undefined) throw new Error(`param set ${name} missing from ${FILE}`);
  const sp = set.shared_params;
  const num = (k: string): number => Number(asBigInt(sp[k]));
  return {
    session: {
      num_blocks_per_session: num('num_blocks_per_session'),
      grace_period_end_offset_blocks: num('grace_period_end_offset_blocks'),
      claim_window_open_offset_blocks: num('claim_window_open_offset_blocks'),
      claim_window_close_offset_blocks: num('claim_window_close_offset_blocks'),
      proof_window_open_offset_blocks: num('proof_window_open_offset_blocks'),
      proof_window_close_offset_blocks: num('proof_window_close_offset_blocks'),
      session_grid_anchor_height: num('session_grid_anchor_height'),
      session_number_at_anchor: num('session_number_at_anchor'),
    },
    cuttm: asBigInt(sp.compute_units_to_tokens_multiplier),
    granularity: asBigInt(sp.compute_unit_cost_granularity),
  };
}

function header(h: any) {
  return {
    applicationAddress: h.application_address as string,
    serviceId: h.service_id as string,
    sessionId: h.session_id as string,
    sessionStartBlockHeight: asBigInt(h.session_start_block_height),
    sessionEndBlockHeight: asBigInt(h.session_end_block_height),
  };
}

describe.runIf(v !== undefined)(FILE, () => {
  const cases = (key: string): any[] => (v[key] as any[] | undefined) ?? [];

  describe('windows', () => {
    cases('windows').forEach((c, i) => {
      it(caseTitle(`${FILE}:windows`, i, `${c.param_set} h=${c.query_height}`), () => {
        const { session } = paramsNamed(c.param_set);
        const h = Number(asBigInt(c.query_height));
        const expected: Record<string, unknown> = {};
        for (const [k, val] of Object.entries(c)) {
          if (['param_set', 'query_height', 'note', 'degenerate'].includes(k)) continue;
          expected[k] = typeof val === 'boolean' ? val : Number(asBigInt(val));
        }
        expect(sessionWindows(session, h)).toEqual(expected);
      });
    });
  });

  describe('earliest_commit_heights', () => {
    cases('earliest_commit_heights').forEach((c, i) => {
      it(
        caseTitle(`${FILE}:earliest_commit_heights`, i, `${c.param_set} end=${c.session_end_height}`),
        () => {
          const { session } = paramsNamed(c.param_set);
          const end = Number(asBigInt(c.session_end_height));
          expect(earliestClaimCommitHeight(session, end)).toBe(
            Number(asBigInt(c.earliest_supplier_claim_commit_height)),
          );
          expect(earliestProofCommitHeight(session, end)).toBe(
            Number(asBigInt(c.earliest_supplier_proof_commit_height)),
          );
          expect(proofSeedBlockHeight(session, end)).toBe(Number(asBigInt(c.proof_seed_block_height)));
          // The dormant (disabled upstream) formula: window open + SeededInt63(hash ‖ supplier) mod close offset.
          const d = c.dormant_distribution;
          if (d !== undefined) {
            const addr = new TextEncoder().encode(c.supplier_operator_address);
            const claimDraw = seededInt63(hexToBytes(c.claim_window_open_block_hash_hex), addr);
            const proofDraw = seededInt63(hexToBytes(c.proof_window_open_block_hash_hex), addr);
            expect(claimDraw).toBe(asBigInt(d.claim_random_int63));
            expect(proofDraw).toBe(asBigInt(d.proof_random_int63));
            const w = sessionWindows(session, end);
            const claimOff = BigInt(session.claim_window_close_offset_blocks);
            const proofOff = BigInt(session.proof_window_close_offset_blocks);
            // With a zero close offset the formula has no height (Go would divide by zero).
            if (claimOff > 0n) {
              expect(BigInt(w.claim_window_open_height) + (claimDraw % claimOff)).toBe(
                asBigInt(d.claim_height_if_enabled),
              );
            } else expect(d.claim_height_if_enabled).toBeUndefined();
            if (proofOff > 0n) {
              expect(BigInt(w.proof_window_open_height) + (proofDraw % proofOff)).toBe(
                asBigInt(d.proof_height_if_enabled),
              );
            } else expect(d.proof_height_if_enabled).toBeUndefined();
            expect(new GoRandSource(asBigInt(d.claim_seed_int64)).int63()).toBe(claimDraw);
            expect(new GoRandSource(asBigInt(d.proof_seed_int64)).int63()).toBe(proofDraw);
          }
        },
      );
    });
  });

  describe('session_ids', () => {
    cases('session_ids').forEach((c, i) => {
      it(caseTitle(`${FILE}:session_ids`, i, `${c.param_set} ${c.service_id} h=${c.query_height}`), () => {
        const start = Number(asBigInt(c.session_start_height));
        if (c.param_set !== 'any') {
          const w = sessionWindows(paramsNamed(c.param_set).session, Number(asBigInt(c.query_height)));
          expect({
            start: w.session_start_height,
            end: w.session_end_height,
            number: w.session_number,
          }).toEqual({
            start,
            end: Number(asBigInt(c.session_end_height)),
            number: Number(asBigInt(c.session_number)),
          });
        }
        const hash = hexToBytes(c.start_block_hash_hex);
        expect(bytesToHex(sessionIdPreimage(hash, c.service_id, c.application_address, start))).toBe(
          c.preimage_hex,
        );
        expect(sessionId(hash, c.service_id, c.application_address, start)).toBe(c.session_id);
      });
    });
  });

  it(caseTitle(`${FILE}:supplier_selection`, 0, 'weights, order and selection'), () => {
    const s = v.supplier_selection;
    const preimage = hexToBytes(s.session_id_preimage_hex);
    for (const cand of s.candidates as any[]) {
      expect(supplierSelectionWeight(preimage, cand.operator_address)).toBe(asBigInt(cand.weight_int64));
    }
    const addrs = (s.candidates as any[]).map((c) => c.operator_address as string);
    expect(selectSessionSuppliers(preimage, addrs, addrs.length + 1)).toEqual(addrs);
    expect(selectSessionSuppliers(preimage, addrs, addrs.length - 1)).toEqual(
      s.sorted_order.slice(0, addrs.length - 1),
    );
    expect(selectSessionSuppliers(preimage, addrs, Number(s.num_suppliers_per_session))).toEqual(s.selected);
  });

  describe('proof_requirement', () => {
    cases('proof_requirement').forEach((c, i) => {
      it(caseTitle(`${FILE}:proof_requirement`, i, `${c.param_set} relays=${c.num_relays}`), () => {
        const { cuttm, granularity } = paramsNamed(c.param_set);
        const hdr = header(c.session_header);
        const root = hexToBytes(c.root_hash_hex);
        const seedBlock = hexToBytes(c.seed_block_hash_hex);
        const target = hexToBytes(c.relay_difficulty_target_hash_hex);
        const claim = claimBytes(c.supplier_operator_address, hdr, root);
        expect(bytesToHex(claim)).toBe(c.claim_proto_hex);
        const seed = proofRequirementSeed(claim, seedBlock);
        expect(bytesToHex(seed)).toBe(c.sample_seed_sha256_hex);
        expect(goVarint(seed)).toBe(asBigInt(c.go_varint_seed));
        expect(new GoRandSource(asBigInt(c.go_varint_seed)).int63()).toBe(asBigInt(c.first_int63));
        const parsed = parseClaimRoot(root);
        expect(parsed.count).toBe(asBigInt(c.num_relays));
        expect(parsed.sum).toBe(asBigInt(c.num_claimed_compute_units));
        expect(estimatedFromDifficulty(parsed.sum, target)).toBe(asBigInt(c.num_estimated_compute_units));
        const pricing = {
          compute_units_to_tokens_multiplier: cuttm,
          compute_unit_cost_granularity: granularity,
        };
        expect(claimedUpokt(parsed.sum, target, pricing)).toBe(asBigInt(c.claimed_upokt));
        // Threshold above the claim so the draw is taken; the sample must equal the vector exactly,
        // and the decision must flip exactly at the sample value.
        const base = {
          supplierOperatorAddress: c.supplier_operator_address,
          sessionHeader: hdr,
          rootHash: root,
          seedBlockHash: seedBlock,
          target,
          pricing,
          proofRequirementThresholdUpokt: asBigInt(c.claimed_upokt) + 1n,
        };
        const sample = Number(c.sample_value);
        expect(proofRequirement({ ...base, proofRequestProbability: sample })).toEqual({
          reason: 'PROBABILISTIC',
          required: true,
          claimedUpokt: asBigInt(c.claimed_upokt),
          sample,
          seedInt64: asBigInt(c.go_varint_seed),
        });
        expect(proofRequirement({ ...base, proofRequestProbability: sample / 2 }).reason).toBe(
          'NOT_REQUIRED',
        );
        expect(
          proofRequirement({
            ...base,
            proofRequirementThresholdUpokt: asBigInt(c.claimed_upokt),
            proofRequestProbability: 0,
          }),
        ).toEqual({ reason: 'THRESHOLD', required: true, claimedUpokt: asBigInt(c.claimed_upokt) });
        expect(bytesToHex(proofPath(seedBlock, hdr.sessionId))).toBe(c.proof_path_hex);
      });
    });
  });

  describe('difficulty_targets', () => {
    cases('difficulty_targets').forEach((c, i) => {
      it(
        caseTitle(`${FILE}:difficulty_targets`, i, `ema=${c.relays_ema} target=${c.target_num_relays}`),
        () => {
          const t = computeNewDifficultyTargetHash(
            BASE_RELAY_DIFFICULTY_TARGET,
            asBigInt(c.target_num_relays),
            asBigInt(c.relays_ema),
          );
          expect(bytesToHex(t)).toBe(c.new_target_hash_hex);
          const m = relayDifficultyMultiplier(t);
          expect(m.den === 1n ? `${m.num}` : `${m.num}/${m.den}`).toBe(c.difficulty_multiplier);
        },
      );
    });
  });

  describe('relays_ema', () => {
    cases('relays_ema').forEach((c, i) => {
      it(caseTitle(`${FILE}:relays_ema`, i, `prev=${c.prev_ema} relays=${c.num_relays}`), () => {
        expect(computeRelaysEma(asBigInt(c.prev_ema), asBigInt(c.num_relays))).toBe(asBigInt(c.new_ema));
      });
    });
  });

  describe('volume_applicability', () => {
    cases('volume_applicability').forEach((c, i) => {
      it(caseTitle(`${FILE}:volume_applicability`, i), () => {
        expect(isRelayVolumeApplicable(hexToBytes(c.relay_hash_hex), hexToBytes(c.target_hash_hex))).toBe(
          c.volume_applicable,
        );
      });
    });
  });
});
