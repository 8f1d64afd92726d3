/**
 * Every JSON file in the vectors directory must be handled by a conformance test here, so a new or
 * renamed vector file cannot be silently skipped.
 */
import { readdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { listVectorFiles, vectorsDir } from '../helpers/vectors.js';

const HANDLED: Record<string, string> = {
  'keys.json': 'keys.test.ts',
  'ring-signatures.json': 'ring-signatures.test.ts',
  'relay-requests.json': 'relay-requests.test.ts',
  'relay-responses.json': 'relay-responses.test.ts',
  'session-windows.json': 'session-windows.test.ts',
  'smst.json': 'smst.test.ts',
};

describe(`vector files in ${vectorsDir()}`, () => {
  const here = readdirSync(dirname(fileURLToPath(import.meta.url)));
  for (const file of listVectorFiles()) {
    it(`${file} has a conformance test`, () => {
      const handler = HANDLED[file];
      expect(handler, `no conformance test handles ${file}`).toBeDefined();
      expect(here).toContain(handler);
    });
  }
});
