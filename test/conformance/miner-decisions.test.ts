/**
 * The miner's claim/proof timing decisions against session-windows.json: the window heights the
 * lifecycle resolves from the chain's shared params (SessionWindowResolver, live and at the
 * session end) and the transition it takes at every height around them (decideTransition) must
 * follow the vector's claim and proof windows exactly. The proof requirement the prover applies
 * is protocol.proofRequirement, checked bit for bit in session-windows.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { decideTransition, SessionWindowResolver } from '../../miner/index.js';
import { pb } from '../../protocol/index.js';
import { asBigInt, caseTitle, hasVectorFile, loadVectors } from '../helpers/vectors.js';

const FILE = 'session-windows.json';
const v: any = hasVectorFile(FILE) ? loadVectors(FILE) : undefined;

function paramsOf(name: string): pb.sharedParams.Params {
  const sp = (v.param_sets as any[]).find((p) => p.name === name).shared_params;
  const n = (k: string): bigint => asBigInt(sp[k]);
  return pb.sharedParams.Params.fromPartial({
    numBlocksPerSession: n('num_blocks_per_session'),
    gracePeriodEndOffsetBlocks: n('grace_period_end_offset_blocks'),
    claimWindowOpenOffsetBlocks: n('claim_window_open_offset_blocks'),
    claimWindowCloseOffsetBlocks: n('claim_window_close_offset_blocks'),
    proofWindowOpenOffsetBlocks: n('proof_window_open_offset_blocks'),
    proofWindowCloseOffsetBlocks: n('proof_window_close_offset_blocks'),
    sessionGridAnchorHeight: n('session_grid_anchor_height'),
    sessionNumberAtAnchor: n('session_number_at_anchor'),
    computeUnitsToTokensMultiplier: n('compute_units_to_tokens_multiplier'),
    computeUnitCostGranularity: n('compute_unit_cost_granularity'),
  });
}

describe.runIf(v !== undefined)(`${FILE}: miner decisions`, () => {
  const cases = ((v?.windows as any[] | undefined) ?? []).filter(
    (c) => Number(asBigInt(c.session_end_height)) > 0,
  );
  cases.forEach((c, i) => {
    it(caseTitle(`${FILE}:windows`, i, `${c.param_set} end=${c.session_end_height}`), async () => {
      const params = paramsOf(c.param_set);
      const chain = {
        getSharedParams: () => Promise.resolve(params),
        getSharedParamsAtHeight: () => Promise.resolve(params),
      };
      const end = Number(asBigInt(c.session_end_height));
      const claimOpen = Number(asBigInt(c.claim_window_open_height));
      const claimClose = Number(asBigInt(c.claim_window_close_height));
      const proofOpen = Number(asBigInt(c.proof_window_open_height));
      const proofClose = Number(asBigInt(c.proof_window_close_height));
      const resolver = new SessionWindowResolver(chain);
      // Live params (session not ended) and params at the end height (ended) give the same windows.
      for (const current of [end, end + 1]) {
        const w = await resolver.windows(end, current);
        expect([
          w.claim_window_open_height,
          w.claim_window_close_height,
          w.proof_window_open_height,
          w.proof_window_close_height,
        ]).toEqual([claimOpen, claimClose, proofOpen, proofClose]);
      }
      const w = await resolver.windows(end, end + 1);
      for (let h = end; h <= proofClose + 1; h++) {
        const active = decideTransition('active', w, h);
        const expectedActive =
          h >= claimClose
            ? { to: 'claim_window_closed', lost: 'claim_expired' }
            : h >= claimOpen
              ? { to: 'claiming', job: 'claim' }
              : undefined;
        expect(active, `active at ${h}`).toEqual(expectedActive);
        const claimed = decideTransition('claimed', w, h);
        const expectedClaimed =
          h >= proofClose
            ? { to: 'proof_window_closed', lost: 'proof_missing' }
            : h >= proofOpen
              ? { to: 'proving', job: 'proof' }
              : undefined;
        expect(claimed, `claimed at ${h}`).toEqual(expectedClaimed);
      }
    });
  });
});
