// Regenerates the TypeScript protobuf code from protocol/proto/**/*.proto with buf + ts-proto
// (both from node_modules; no network). `node scripts/gen-proto.mjs [outDir]` writes into outDir
// (default protocol/proto/gen), replacing what was there.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const outDir = resolve(process.argv[2] ?? join(root, 'protocol', 'proto', 'gen'));
const bin = (name) => join(root, 'node_modules', '.bin', name);

// ts-proto options: int64 as bigint (heights above 2^53 exist), maps as Map so the encoder can be
// handed entries in Go's sorted order, .js import suffix for NodeNext ESM.
export const TS_PROTO_OPTS = [
  'forceLong=bigint',
  'useMapType=true',
  'esModuleInterop=true',
  'importSuffix=.js',
  'outputServices=generic-definitions',
  'outputJsonMethods=true',
  'outputPartialMethods=true',
  'env=node',
];

const work = mkdtempSync(join(tmpdir(), 'gen-proto-'));
try {
  const template = {
    version: 'v2',
    plugins: [{ local: bin('protoc-gen-ts_proto'), out: join(work, 'out'), opt: TS_PROTO_OPTS }],
  };
  const templatePath = join(work, 'buf.gen.json');
  writeFileSync(templatePath, JSON.stringify(template));
  execFileSync(bin('buf'), ['generate', join(root, 'protocol', 'proto'), '--template', templatePath], {
    cwd: root,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  cpSync(join(work, 'out'), outDir, { recursive: true });
  console.log(`gen-proto: TypeScript written to ${outDir}`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
