// Copies the non-TypeScript files the compiled code needs at run time (Lua scripts, .proto
// sources) from the source tree into dist/, keeping their relative paths.
import { cpSync, readdirSync, statSync, mkdirSync } from 'node:fs';
import { join, dirname, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const SOURCE_DIRS = [
  'cmd',
  'core',
  'protocol',
  'chain',
  'rings',
  'transport',
  'cache',
  'relayer',
  'miner',
  'localnet',
];
const EXTENSIONS = ['.lua', '.proto'];

let copied = 0;
function walk(dir) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (EXTENSIONS.some((e) => name.endsWith(e))) {
      const dest = join(root, 'dist', relative(root, p));
      mkdirSync(dirname(dest), { recursive: true });
      cpSync(p, dest);
      copied++;
    }
  }
}
for (const d of SOURCE_DIRS) {
  try {
    statSync(join(root, d));
  } catch {
    continue;
  }
  walk(join(root, d));
}
console.log(`copy-assets: ${copied} file(s) copied into dist/`);
