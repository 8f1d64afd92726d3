/**
 * Go `time.ParseDuration` syntax (`2h`, `1h30m`, `100ms`, `1.5s`), used by upstream keys such as
 * `relay_meter.cache_ttl` so operators' files carry over unchanged.
 */
const UNIT_MS: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
};
const PART_RE = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/y;

/** Milliseconds of a Go duration string, or undefined when the text is not one. Negative durations are refused. */
export function parseGoDurationMs(text: string): number | undefined {
  if (text === '0') return 0;
  if (text === '') return undefined;
  let total = 0;
  PART_RE.lastIndex = 0;
  let pos = 0;
  while (pos < text.length) {
    PART_RE.lastIndex = pos;
    const m = PART_RE.exec(text);
    if (m === null) return undefined;
    total += Number(m[1]) * UNIT_MS[m[2]!]!;
    pos = PART_RE.lastIndex;
  }
  return total;
}
