// Writes the keys_file of the localnet test suppliers (genesis.sample.yaml): each private key is
// cosmos-sdk GenPrivKeyFromSecret("localnet/<name>"), public by construction, never usable elsewhere.
// Usage: node localnet-keys.mjs <output file> [name ...]   (default names: supplier-1 supplier-2)
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';

const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

export function localnetPrivateKeyHex(name) {
  const digest = createHash('sha256').update(`localnet/${name}`).digest('hex');
  const k = (BigInt(`0x${digest}`) % (N - 1n)) + 1n;
  return k.toString(16).padStart(64, '0');
}

export function keysFileText(names) {
  return `keys:\n${names.map((n) => `  - '${localnetPrivateKeyHex(n)}'\n`).join('')}`;
}

const [out, ...names] = process.argv.slice(2);
if (out !== undefined) {
  const list = names.length > 0 ? names : ['supplier-1', 'supplier-2'];
  writeFileSync(out, keysFileText(list), { mode: 0o400 });
  process.stdout.write(`wrote ${list.length} localnet supplier key(s) to ${out}\n`);
}
