import { describe, expect, it } from 'vitest';
import { isPlausibleSessionHeights } from './validator.js';

describe('isPlausibleSessionHeights (relayer.md §4.1)', () => {
  it('applies the span and window bounds, skipping the window with no block seen', () => {
    const cases: [number, number, number][] = [
      [1, 4, 5],
      [0, 4, 5],
      [4, 4, 5],
      [5, 4, 5],
      [1, 10_001, 5],
      [1, 10_002, 5],
      [10_005, 10_008, 5],
      [10_006, 10_009, 5],
      [1, 4, 10_004],
      [1, 4, 10_005],
      [50_000, 50_004, 0],
      [50_000, 50_004, -1],
    ];
    expect(cases.map(([s, e, h]) => isPlausibleSessionHeights(s, e, h))).toEqual([
      true,
      false,
      false,
      false,
      true,
      false,
      true,
      false,
      true,
      false,
      true,
      true,
    ]);
  });
});
