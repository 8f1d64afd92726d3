import { describe, expect, it } from 'vitest';
import { pb } from '../protocol/index.js';
import { StaticFeeEstimator, headerFromSnapshot, isWindowRejection, splitFee } from './claimer.js';
import type { SessionSnapshot } from './session-store.js';

function proofParams(fee?: string): pb.proofParams.Params {
  return pb.proofParams.Params.fromPartial(
    fee === undefined ? {} : { proofSubmissionFee: { denom: 'upokt', amount: fee } },
  );
}

describe('StaticFeeEstimator', () => {
  it('adds the configured gas fees to the live proof submission fee', async () => {
    const est = new StaticFeeEstimator(
      { chain: { getProofParams: () => Promise.resolve(proofParams('7')) } },
      { estimated_claim_fee_upokt: 10n, estimated_proof_fee_upokt: 20n },
    );
    expect(await est.estimateUpokt('pokt1a')).toBe(37n);
  });

  it('never estimates below the floor (2 upokt by default)', async () => {
    const chain = { getProofParams: () => Promise.resolve(proofParams()) };
    expect(await new StaticFeeEstimator({ chain }).estimateUpokt('pokt1a')).toBe(2n);
    expect(await new StaticFeeEstimator({ chain }, { min_fee_upokt: 50n }).estimateUpokt('pokt1a')).toBe(50n);
  });

  it('reuses the proof params for cache_ms, then reads them again', async () => {
    let calls = 0;
    let now = 0;
    const est = new StaticFeeEstimator({
      chain: {
        getProofParams: () => {
          calls++;
          return Promise.resolve(proofParams(String(calls * 10)));
        },
      },
      now: () => now,
    });
    expect(await est.estimateUpokt('a')).toBe(10n);
    now = 29_999;
    expect(await est.estimateUpokt('a')).toBe(10n);
    now = 30_000;
    expect(await est.estimateUpokt('a')).toBe(20n);
    expect(calls).toBe(2);
  });

  it('lets a failing params query surface to the caller', async () => {
    const est = new StaticFeeEstimator({
      chain: { getProofParams: () => Promise.reject(new Error('down')) },
    });
    await expect(est.estimateUpokt('a')).rejects.toThrow('down');
  });
});

describe('splitFee', () => {
  it('splits into integer shares with the remainder on the first', () => {
    expect(splitFee(10n, 3)).toEqual([4n, 3n, 3n]);
    expect(splitFee(9n, 3)).toEqual([3n, 3n, 3n]);
    expect(splitFee(1n, 2)).toEqual([1n, 0n]);
    expect(splitFee(0n, 1)).toEqual([0n]);
    expect(splitFee(5n, 0)).toEqual([]);
  });
});

describe('isWindowRejection', () => {
  it('recognises the proof module window codes and window wording', () => {
    expect(isWindowRejection('', 'proof', 1121)).toBe(true);
    expect(isWindowRejection('', 'proof', 1122)).toBe(true);
    expect(isWindowRejection("claim attempted outside of the session's claim window", 'sdk', 18)).toBe(true);
    expect(isWindowRejection('failed: outside of claim window', 'sdk', 18)).toBe(true);
    expect(isWindowRejection('proof window closed', '', 1)).toBe(true);
  });

  it('does not treat other failures as final', () => {
    expect(isWindowRejection('insufficient fees', 'sdk', 13)).toBe(false);
    expect(isWindowRejection('', 'proof', 1126)).toBe(false);
    expect(isWindowRejection('', 'other', 1121)).toBe(false);
    expect(isWindowRejection('session window math', 'sdk', 1)).toBe(false);
  });
});

describe('headerFromSnapshot', () => {
  it('builds the five header fields from the snapshot', () => {
    const s = {
      session_id: 'abc',
      supplier_operator_address: 'pokt1s',
      service_id: 'anvil',
      application_address: 'pokt1app',
      session_start_height: 1,
      session_end_height: 4,
    } as SessionSnapshot;
    expect(headerFromSnapshot(s)).toEqual({
      applicationAddress: 'pokt1app',
      serviceId: 'anvil',
      sessionId: 'abc',
      sessionStartBlockHeight: 1n,
      sessionEndBlockHeight: 4n,
    });
  });
});
