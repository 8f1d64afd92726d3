/**
 * `npm run bench [-- area ...]`: runs every `bench/<area>/*.bench.ts` (or only the named areas) in
 * this process, one after another, printing a machine header and one JSON line per result.
 * A bench file default-exports `async (reporter: BenchReporter) => void`.
 */
import { readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { BenchReporter } from './report.js';

type BenchFn = (reporter: BenchReporter) => Promise<void>;

const here = dirname(fileURLToPath(import.meta.url));
const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const areas = readdirSync(here)
  .filter((d) => statSync(join(here, d)).isDirectory())
  .sort();
const unknown = wanted.filter((w) => !areas.includes(w));
if (unknown.length > 0) {
  process.stderr.write(`bench: unknown area(s) ${unknown.join(', ')}; available: ${areas.join(', ')}\n`);
  process.exit(2);
}

const reporter = new BenchReporter();
reporter.header({ areas: wanted.length > 0 ? wanted : areas });
for (const area of areas) {
  if (wanted.length > 0 && !wanted.includes(area)) continue;
  const files = readdirSync(join(here, area))
    .filter((f) => f.endsWith('.bench.ts'))
    .sort();
  for (const f of files) {
    const mod = (await import(pathToFileURL(join(here, area, f)).href)) as { default: BenchFn };
    await mod.default(reporter);
  }
}
