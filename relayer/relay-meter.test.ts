import { describe, expect, it } from 'vitest';
import { MeterParamsError, MeterScriptReplyError } from './errors.js';
import { consumeReplyToDecision, maxStakeUpokt, relayCostUpokt, type MeterInputs } from './relay-meter.js';

const INPUTS: MeterInputs = {
  app_stake_upokt: 1_000_000_000n,
  compute_units_per_relay: 10n,
  compute_units_to_tokens_multiplier: 42n,
  compute_unit_cost_granularity: 1n,
  num_suppliers_per_session: 10,
  shared: {
    num_blocks_per_session: 10,
    claim_window_open_offset_blocks: 1,
    claim_window_close_offset_blocks: 4,
    proof_window_open_offset_blocks: 0,
    proof_window_close_offset_blocks: 4,
  },
};

describe('relayCostUpokt', () => {
  it('is floor(CUPR × multiplier / granularity) with CUPR 0 counted as 1', () => {
    expect(relayCostUpokt(INPUTS)).toBe(420n);
    expect(
      relayCostUpokt({
        ...INPUTS,
        compute_unit_cost_granularity: 1_000_000n,
        compute_units_to_tokens_multiplier: 145_990n,
      }),
    ).toBe(1n);
    expect(relayCostUpokt({ ...INPUTS, compute_units_per_relay: 0n })).toBe(42n);
  });

  it('refuses granularity 0', () => {
    expect(() => relayCostUpokt({ ...INPUTS, compute_unit_cost_granularity: 0n })).toThrow(MeterParamsError);
  });
});

describe('maxStakeUpokt', () => {
  it('splits the stake over suppliers and pending sessions (ceil(9/10)+1 = 2)', () => {
    expect(maxStakeUpokt(INPUTS)).toEqual({ base: 50_000_000n, effective: 50_000_000n });
  });

  it('counts 0 suppliers and 0 window blocks as 1', () => {
    const zero = {
      ...INPUTS,
      num_suppliers_per_session: 0,
      shared: {
        ...INPUTS.shared,
        claim_window_open_offset_blocks: 0,
        claim_window_close_offset_blocks: 0,
        proof_window_close_offset_blocks: 0,
      },
    };
    expect(maxStakeUpokt(zero)).toEqual({ base: 500_000_000n, effective: 500_000_000n });
  });

  it('uses app stake × service factor when a factor is set', () => {
    expect(maxStakeUpokt({ ...INPUTS, service_factor: 0.25 })).toEqual({
      base: 50_000_000n,
      effective: 250_000_000n,
    });
    expect(maxStakeUpokt({ ...INPUTS, service_factor: 0 })).toEqual({ base: 50_000_000n, effective: 0n });
    expect(() => maxStakeUpokt({ ...INPUTS, service_factor: -1 })).toThrow(MeterParamsError);
  });
});

describe('consumeReplyToDecision', () => {
  it('maps the script statuses to values and anything else to a fault', () => {
    expect(consumeReplyToDecision([1, 5, 10], 5n)).toEqual({
      ok: true,
      code: 'METER_ALLOWED',
      cost: 5n,
      consumed: 5n,
      max: 10n,
    });
    expect(consumeReplyToDecision([-1, 8, 10], 5n)).toEqual({
      ok: false,
      code: 'METER_EXHAUSTED',
      cost: 5n,
      consumed: 8n,
      max: 10n,
    });
    expect(() => consumeReplyToDecision([-2, 0, 0], 5n)).toThrow(MeterScriptReplyError);
    expect(() => consumeReplyToDecision('OK', 5n)).toThrow(MeterScriptReplyError);
  });
});
