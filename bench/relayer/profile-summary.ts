/**
 * `tsx bench/relayer/profile-summary.ts <file.cpuprofile> [top] [ops]`: where a V8 CPU profile spent
 * its busy time (idle samples excluded): self time by function and by file, and inclusive time of
 * this repository's own functions (each function counted once per sample), as percentages of the
 * busy samples, and (given `ops`, e.g. the relays served while profiling) in µs per op. Used on
 * the profiles the relayer bench writes with RELAYER_BENCH_CPU_PROF.
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const [file, topArg, opsArg] = process.argv.slice(2);
if (file === undefined) {
  process.stderr.write('usage: tsx bench/relayer/profile-summary.ts <file.cpuprofile> [top] [ops]\n');
  process.exit(2);
}
const top = Number(topArg ?? 30);
const ops = opsArg === undefined ? undefined : Number(opsArg);
const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parentOf = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parentOf.set(c, n.id);

const repoRoot = new URL('../../', import.meta.url).href;
const shortUrl = (u: string): string =>
  u.startsWith(repoRoot) ? u.slice(repoRoot.length).replace(/^node_modules\//, 'nm/') : u;
const frameName = (id: number): string => {
  const f = byId.get(id)!.callFrame;
  return `${f.functionName || '(anonymous)'} ${shortUrl(f.url)}${f.url === '' ? '' : `:${f.lineNumber + 1}`}`;
};
const isOwn = (id: number): boolean => {
  const u = byId.get(id)!.callFrame.url;
  return u.startsWith(repoRoot) && !u.startsWith(`${repoRoot}node_modules/`);
};

const fnSelf = new Map<string, number>();
const fileSelf = new Map<string, number>();
const ownInclusive = new Map<string, number>();
let busy = 0;
let idle = 0;
profile.samples.forEach((id, i) => {
  const us = profile.timeDeltas[i] ?? 0;
  const f = byId.get(id)!.callFrame;
  if (f.functionName === '(idle)') {
    idle += us;
    return;
  }
  busy += us;
  const key = frameName(id);
  fnSelf.set(key, (fnSelf.get(key) ?? 0) + us);
  const fk = f.url === '' ? `(${f.functionName || 'native'})` : shortUrl(f.url);
  fileSelf.set(fk, (fileSelf.get(fk) ?? 0) + us);
  const seen = new Set<string>();
  for (let n: number | undefined = id; n !== undefined; n = parentOf.get(n)) {
    if (!isOwn(n)) continue;
    const k = frameName(n);
    if (seen.has(k)) continue;
    seen.add(k);
    ownInclusive.set(k, (ownInclusive.get(k) ?? 0) + us);
  }
});

const pct = (us: number): string =>
  ((100 * us) / busy).toFixed(1).padStart(5) +
  '%' +
  (ops !== undefined && ops > 0 ? `  ${(us / ops).toFixed(1).padStart(7)} µs/op` : '');
const out = (s: string): boolean => process.stdout.write(s + '\n');
out(
  `${file}: ${((busy + idle) / 1e6).toFixed(2)} s sampled, main thread busy ${((100 * busy) / (busy + idle)).toFixed(1)}%; ` +
    'percentages below are of busy time' +
    (ops !== undefined ? `; ${ops} ops → ${(busy / ops).toFixed(1)} µs busy per op` : ''),
);
const print = (title: string, m: Map<string, number>): void => {
  out(`\n${title}`);
  for (const [k, us] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) out(`${pct(us)}  ${k}`);
};
print('self time by function', fnSelf);
print('self time by file', fileSelf);
print("inclusive time of this repository's functions", ownInclusive);
