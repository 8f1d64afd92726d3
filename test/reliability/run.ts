/**
 * `npm run reliability [-- --soak 300s] [-- --render-only]`: runs the reliability suites and writes
 * docs/RELIABILITY.md from what they measured.
 *
 *   1. the fault, hostile-input and fuzz tests (test/fault, test/hostile, test/fuzz) with vitest's
 *      JSON report; each fault test writes its ledger figures to reports/reliability/;
 *   2. the fuzz bench (`npm run bench -- fuzz`, ≥ 100,000 cases);
 *   3. the soak (`npm run soak -- --duration <soak>`);
 *   4. the page, from the records of this run only (older records are removed first).
 *
 * `--render-only` skips 1–3 and renders the records already there. Exit 1 when a step failed (the
 * page is still written and shows which).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { reliabilityDir } from '../helpers/reliability.js';
import { renderReliability, type StoredRecord, type VitestJson } from './render.js';

const root = join(import.meta.dirname, '..', '..');
const args = process.argv.slice(2);
if (args.includes('--help') || args.includes('-h')) {
  process.stdout.write(
    [
      'usage: npm run reliability [-- --soak <duration>] [-- --render-only]',
      '',
      'Runs test/fault, test/hostile and test/fuzz, the fuzz bench (100,000+ cases) and a soak run,',
      'then writes docs/RELIABILITY.md from the figures they recorded in reports/reliability/.',
      '',
      '  --soak <duration>  soak length passed to `npm run soak -- --duration` (default 300s; shorter runs still show heap warm-up)',
      '  --render-only      only render docs/RELIABILITY.md from the records already there',
      '',
    ].join('\n'),
  );
  process.exit(0);
}
const renderOnly = args.includes('--render-only');
const soakAt = args.indexOf('--soak');
const soakDuration = soakAt >= 0 ? (args[soakAt + 1] ?? '300s') : '300s';

const dir = reliabilityDir();
const vitestReport = join(dir, 'vitest.json');
const steps: [string, boolean][] = [];

function step(name: string, cmd: string, cmdArgs: string[]): void {
  process.stdout.write(`\n== ${name}: ${cmd} ${cmdArgs.join(' ')}\n`);
  const r = spawnSync(cmd, cmdArgs, { cwd: root, stdio: 'inherit', env: process.env });
  steps.push([name, r.status === 0]);
}

if (!renderOnly) {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const suites = ['test/fault', 'test/hostile', 'test/fuzz'].filter((d) => existsSync(join(root, d)));
  step('fault, hostile-input and fuzz tests', 'npx', [
    'vitest',
    'run',
    ...suites,
    '--reporter=default',
    '--reporter=json',
    `--outputFile.json=${vitestReport}`,
  ]);
  step('fuzz bench', 'npm', ['run', '--silent', 'bench', '--', 'fuzz']);
  step('soak', 'npm', ['run', '--silent', 'soak', '--', '--duration', soakDuration]);
}

const records: StoredRecord[] = existsSync(dir)
  ? readdirSync(dir)
      .filter((f) => /^(fault|fuzz|soak|hostile)-.*\.json$/.test(f))
      .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as StoredRecord)
  : [];
const vitest = existsSync(vitestReport)
  ? (JSON.parse(readFileSync(vitestReport, 'utf8')) as VitestJson)
  : undefined;

function git(...a: string[]): string {
  const r = spawnSync('git', a, { cwd: root, encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : 'unknown';
}
function redisVersion(): string {
  const r = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  return /v=(\S+)/.exec(r.stdout ?? '')?.[1] ?? 'unknown';
}

// The page itself does not count: it is what this call rewrites.
const dirty =
  git('status', '--porcelain', '--', '.', ':!docs/RELIABILITY.md').length > 0
    ? ' (with uncommitted changes)'
    : '';
const page = renderReliability(records, vitest, {
  generatedAt: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
  commit: `${git('rev-parse', '--short', 'HEAD')}${dirty}`,
  machine: `${cpus()[0]?.model.trim() ?? 'unknown CPU'}, ${cpus().length} cores, ${Math.round((totalmem() / 2 ** 30) * 10) / 10} GiB, Node ${process.version}, Redis ${redisVersion()}`,
  steps,
  root,
});
mkdirSync(join(root, 'docs'), { recursive: true });
writeFileSync(join(root, 'docs', 'RELIABILITY.md'), `${page}\n`);
// The page is checked by `npm run lint` like every other file: write it in the house format.
spawnSync('npx', ['prettier', '--write', 'docs/RELIABILITY.md'], { cwd: root, stdio: 'ignore' });
process.stdout.write(`\nwrote docs/RELIABILITY.md from ${records.length} records\n`);
process.exit(steps.every(([, ok]) => ok) ? 0 : 1);
