import { describe, expect, it } from 'vitest';
import { InvalidInputError, bytesToHex, hexToBytes } from '../core/index.js';
import { GoRandSource, goVarint } from './go-rand.js';
import { sessionWindows, isWithinGracePeriod, sessionId, type SessionParams } from './session.js';
import {
  BASE_RELAY_DIFFICULTY_TARGET,
  computeNewDifficultyTargetHash,
  computeRelaysEma,
  relayDifficultyMultiplier,
} from './difficulty.js';
import { claimedUpokt, parseClaimRoot } from './claim.js';

const defaults: SessionParams = {
  num_blocks_per_session: 10,
  grace_period_end_offset_blocks: 1,
  claim_window_open_offset_blocks: 1,
  claim_window_close_offset_blocks: 4,
  proof_window_open_offset_blocks: 0,
  proof_window_close_offset_blocks: 4,
  session_grid_anchor_height: 0,
  session_number_at_anchor: 0,
};

describe('Go encoding/binary.Varint', () => {
  it('decodes zig-zag values from the leading bytes only', () => {
    expect(goVarint(hexToBytes('00ff'))).toBe(0n);
    expect(goVarint(hexToBytes('01'))).toBe(-1n);
    expect(goVarint(hexToBytes('02'))).toBe(1n);
    expect(goVarint(hexToBytes('ac02'))).toBe(150n);
    expect(goVarint(hexToBytes('feffffffffffffffff01'))).toBe(9223372036854775807n);
    expect(goVarint(hexToBytes('ffffffffffffffffff01'))).toBe(-9223372036854775808n);
  });

  it('returns 0 on overflow and on a buffer that ends inside the varint, like Go', () => {
    expect(goVarint(hexToBytes('ffffffffffffffffff02'))).toBe(0n);
    expect(goVarint(hexToBytes('ffffffffffffffffffff01'))).toBe(0n);
    expect(goVarint(hexToBytes('ffff'))).toBe(0n);
    expect(goVarint(new Uint8Array(0))).toBe(0n);
  });
});

describe('Go math/rand source', () => {
  it('treats seeds ≡ 0 mod 2^31−1 as the fixed seed 89482311, like Go', () => {
    expect(new GoRandSource(0n).int63()).toBe(new GoRandSource(89482311n).int63());
    expect(new GoRandSource(2147483647n).int63()).toBe(new GoRandSource(89482311n).int63());
  });

  it('reduces negative seeds with a sign-of-dividend modulus', () => {
    expect(new GoRandSource(-1n).int63()).toBe(new GoRandSource(2147483646n).int63());
  });

  it('gives two outputs and then refuses with a typed error instead of guessing', () => {
    const src = new GoRandSource(42n);
    // Go: rand.New(rand.NewSource(42)).Int63() twice.
    expect(src.int63()).toBe(3440579354231278675n);
    expect(src.int63()).toBe(608747136543856411n);
    expect(() => src.int63()).toThrow(expect.objectContaining({ code: 'GO_RAND_EXHAUSTED' }));
  });
});

describe('session math', () => {
  it('rejects unsafe heights and a zero session length', () => {
    expect(() => sessionWindows(defaults, 2 ** 53)).toThrow(InvalidInputError);
    expect(() => sessionWindows(defaults, 1.5)).toThrow(InvalidInputError);
    expect(() => sessionWindows({ ...defaults, num_blocks_per_session: 0 }, 5)).toThrow(/at least 1/);
    expect(() => sessionWindows({ ...defaults, grace_period_end_offset_blocks: -1 }, 5)).toThrow(
      InvalidInputError,
    );
  });

  it('serves an ended session through the grace period and not after', () => {
    expect(isWithinGracePeriod(defaults, 10, 11)).toBe(true);
    expect(isWithinGracePeriod(defaults, 10, 12)).toBe(false);
  });

  it('session id of an empty block hash still hashes the delimiters and height', () => {
    expect(sessionId(new Uint8Array(0), 'svc', 'pokt1app', 0)).toHaveLength(64);
    expect(() => sessionId(new Uint8Array(0), 'svc', 'pokt1app', -1)).toThrow(InvalidInputError);
  });
});

describe('difficulty and claim edge cases', () => {
  it('keeps the previous target when EMA equals the target count', () => {
    const prev = hexToBytes('7f'.padEnd(64, 'f'));
    expect(computeNewDifficultyTargetHash(prev, 5n, 5n)).toBe(prev);
  });

  it('refuses a zero EMA (upstream divides by zero) and a zero target', () => {
    expect(() => computeNewDifficultyTargetHash(BASE_RELAY_DIFFICULTY_TARGET, 100n, 0n)).toThrow(
      InvalidInputError,
    );
    expect(() => relayDifficultyMultiplier(new Uint8Array(32))).toThrow(InvalidInputError);
  });

  it('caps at the base target when the scaled value would be longer than 32 bytes', () => {
    expect(bytesToHex(computeNewDifficultyTargetHash(BASE_RELAY_DIFFICULTY_TARGET, 1000n, 1n))).toBe(
      'ff'.repeat(32),
    );
  });

  it('EMA saturates at the uint64 maximum and rejects out-of-range counts', () => {
    expect(computeRelaysEma(2n ** 64n - 1n, 2n ** 64n - 1n)).toBe(2n ** 64n - 1n);
    expect(() => computeRelaysEma(-1n, 0n)).toThrow(InvalidInputError);
    expect(() => computeRelaysEma(0n, 2n ** 64n)).toThrow(InvalidInputError);
  });

  it('parses claim roots and refuses other lengths', () => {
    const root = hexToBytes('11'.repeat(32) + '0000000000000005' + '0000000000000002');
    expect(parseClaimRoot(root)).toEqual({ hash: root.subarray(0, 32), sum: 5n, count: 2n });
    expect(() => parseClaimRoot(root.subarray(0, 47))).toThrow(InvalidInputError);
  });

  it('claimed upokt at a 4x difficulty, mainnet pricing (spec example: 58)', () => {
    const target = hexToBytes('3f' + 'ff'.repeat(31));
    const pricing = { compute_units_to_tokens_multiplier: 145990n, compute_unit_cost_granularity: 1000000n };
    expect(claimedUpokt(100n, target, pricing)).toBe(58n);
    expect(() => claimedUpokt(1n, target, { ...pricing, compute_unit_cost_granularity: 0n })).toThrow(
      InvalidInputError,
    );
  });
});
