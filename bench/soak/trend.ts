/**
 * Trend detection for the soak run: a line through the second half of a series (the first half is
 * warm-up: JIT, caches, connection pools, Redis allocations), and a verdict on whether the growth
 * that line predicts over that half exceeds a threshold. The line is the Theil–Sen estimate (the
 * median of the slopes between every pair of samples), so one spike — a GC pause in the lag, a
 * burst of pending stream entries — does not tilt it the way it tilts least squares.
 *
 *   const v = growthVerdict(rssSeries, { maxGrowthPct: 15, minGrowth: 24 * 2 ** 20 });
 *   if (v.growing) fail(v);
 *
 * A series is flagged only when the fitted growth exceeds BOTH the absolute floor and the relative
 * limit, so the noise of a flat series (GC saw-tooth, a burst of pending entries) does not count,
 * and neither does a small absolute rise on a small base.
 */

export interface Point {
  /** Seconds since the start of the run. */
  t: number;
  v: number;
}

export interface LinearFit {
  /** Units of v per second. */
  slope: number;
  intercept: number;
  points: number;
}

/** Least squares over `points`; slope 0 for fewer than two distinct times. */
export function fitLine(points: readonly Point[]): LinearFit {
  const n = points.length;
  if (n === 0) return { slope: 0, intercept: 0, points: 0 };
  const meanT = points.reduce((a, p) => a + p.t, 0) / n;
  const meanV = points.reduce((a, p) => a + p.v, 0) / n;
  let sxx = 0;
  let sxy = 0;
  for (const p of points) {
    sxx += (p.t - meanT) ** 2;
    sxy += (p.t - meanT) * (p.v - meanV);
  }
  const slope = sxx === 0 ? 0 : sxy / sxx;
  return { slope, intercept: meanV - slope * meanT, points: n };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Theil–Sen: median pairwise slope, median residual as intercept; slope 0 without two distinct times. */
export function robustLine(points: readonly Point[]): LinearFit {
  const n = points.length;
  if (n === 0) return { slope: 0, intercept: 0, points: 0 };
  const slopes: number[] = [];
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const dt = points[j]!.t - points[i]!.t;
      if (dt !== 0) slopes.push((points[j]!.v - points[i]!.v) / dt);
    }
  }
  const slope = slopes.length === 0 ? 0 : median(slopes);
  return { slope, intercept: median(points.map((p) => p.v - slope * p.t)), points: n };
}

/** The samples at or after the midpoint of the run (by time). */
export function secondHalf(points: readonly Point[]): Point[] {
  if (points.length === 0) return [];
  const t0 = points[0]!.t;
  const t1 = points[points.length - 1]!.t;
  const mid = t0 + (t1 - t0) / 2;
  return points.filter((p) => p.t >= mid);
}

export interface GrowthLimit {
  /** Growth (fitted, over the second half) above this percentage of the fitted start value … */
  maxGrowthPct: number;
  /** … and above this absolute amount (same unit as the series) is a failure. */
  minGrowth: number;
}

export interface GrowthVerdict {
  /** Fitted value at the start of the second half. */
  start: number;
  /** Fitted growth from the start to the end of the second half. */
  growth: number;
  /** growth / start × 100; null when the fitted start is ≤ 0 (any rise above the floor counts). */
  growthPct: number | null;
  /** Units per minute. */
  slopePerMinute: number;
  points: number;
  growing: boolean;
}

/** Fits the second half of `series` and compares its growth with `limit`. */
export function growthVerdict(series: readonly Point[], limit: GrowthLimit): GrowthVerdict {
  const half = secondHalf(series);
  const fit = robustLine(half);
  if (half.length < 3) {
    return {
      start: half[0]?.v ?? 0,
      growth: 0,
      growthPct: 0,
      slopePerMinute: 0,
      points: half.length,
      growing: false,
    };
  }
  const tStart = half[0]!.t;
  const tEnd = half[half.length - 1]!.t;
  const start = fit.intercept + fit.slope * tStart;
  const growth = fit.slope * (tEnd - tStart);
  const growthPct = start > 0 ? (growth / start) * 100 : null;
  const growing = growth > limit.minGrowth && (growthPct === null || growthPct > limit.maxGrowthPct);
  return { start, growth, growthPct, slopePerMinute: fit.slope * 60, points: half.length, growing };
}
