/**
 * Loads the shared conformance vectors. The directory is `../shared/vectors` beside the repo by
 * default and `VECTORS_DIR` when set; files are read in place, never copied.
 *
 * JSON numbers beyond 2^53 (int64 values in the vectors) are kept exact: integers that fit a double
 * exactly come back as `number`, larger ones as `bigint`. Use `asBigInt()` to read either.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, isInteger } from 'lossless-json';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export function vectorsDir(): string {
  return resolve(process.env['VECTORS_DIR'] ?? join(repoRoot, '..', 'shared', 'vectors'));
}

export function listVectorFiles(): string[] {
  const dir = vectorsDir();
  if (!existsSync(dir)) throw new Error(`vectors directory ${dir} not found (set VECTORS_DIR)`);
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort();
}

export function hasVectorFile(name: string): boolean {
  return existsSync(join(vectorsDir(), name));
}

function parseNumber(text: string): number | bigint {
  if (isInteger(text)) {
    const n = Number(text);
    return Number.isSafeInteger(n) ? n : BigInt(text);
  }
  return Number(text);
}

export function loadVectors<T = any>(name: string): T {
  const text = readFileSync(join(vectorsDir(), name), 'utf8');
  return parse(text, undefined, parseNumber) as T;
}

/** Reads an integer given as number, bigint or decimal string. */
export function asBigInt(v: unknown): bigint {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number' && Number.isInteger(v)) return BigInt(v);
  if (typeof v === 'string' && /^-?\d+$/.test(v)) return BigInt(v);
  throw new Error(`not an integer: ${String(v)}`);
}

/** A test title that carries the case id: `<file>#<index> <name>`. */
export function caseTitle(file: string, index: number, name?: string): string {
  return `${file}#${index}${name ? ` ${name}` : ''}`;
}
