/**
 * The committed generated code must be exactly what `npm run proto` produces from the .proto
 * files, and the hand-written wire schemas must describe the same fields as the generated code.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import * as schemas from './schemas.js';
import type { MessageSchema } from './wire.js';
import { Relay, RelayMinerError } from './gen/pocket/service/relay.js';
import { POKTHTTPRequest, POKTHTTPResponse } from './gen/sdk/types/http.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const genDir = join(root, 'protocol', 'proto', 'gen');

function listFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? listFiles(p) : [p];
  });
}

describe('generated protobuf code', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'proto-stale-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('is up to date with protocol/proto/**/*.proto (run `npm run proto` if this fails)', () => {
    execFileSync(process.execPath, [join(root, 'scripts', 'gen-proto.mjs'), tmp], { stdio: 'pipe' });
    const fresh = listFiles(tmp)
      .map((f) => relative(tmp, f))
      .sort();
    const committed = listFiles(genDir)
      .map((f) => relative(genDir, f))
      .sort();
    expect(committed).toEqual(fresh);
    for (const f of fresh) {
      expect(readFileSync(join(genDir, f), 'utf8'), `stale: protocol/proto/gen/${f}`).toBe(
        readFileSync(join(tmp, f), 'utf8'),
      );
    }
  });
});

/** Field number → [wire type, payload of its first length-delimited occurrence], top level. */
function topLevelFields(buf: Uint8Array): Map<number, [number, Uint8Array | undefined]> {
  const out = new Map<number, [number, Uint8Array | undefined]>();
  let pos = 0;
  const varint = (): number => {
    let v = 0;
    let scale = 1;
    for (;;) {
      const b = buf[pos++]!;
      v += (b & 0x7f) * scale;
      scale *= 128;
      if (b < 0x80) return v;
    }
  };
  while (pos < buf.length) {
    const tag = varint();
    const wt = tag % 8;
    const field = Math.floor(tag / 8);
    let payload: Uint8Array | undefined;
    if (wt === 0) varint();
    else if (wt === 1) pos += 8;
    else if (wt === 5) pos += 4;
    else if (wt === 2) {
      const len = varint();
      payload = buf.subarray(pos, pos + len);
      pos += len;
    } else throw new Error(`unexpected wire type ${wt}`);
    if (!out.has(field)) out.set(field, [wt, payload]);
  }
  return out;
}

const WIRE: Record<string, number> = { varint: 0, fixed64: 1, fixed32: 5, bytes: 2, string: 2, message: 2 };

/** Every declared field is present with its wire type and nothing else is, recursively. */
function expectSchemaMatches(schema: MessageSchema, encoded: Uint8Array): void {
  const present = topLevelFields(encoded);
  const declared = new Map(Object.entries(schema.fields).map(([n, f]) => [Number(n), WIRE[f.kind]!]));
  expect(new Map([...present].map(([n, [wt]]) => [n, wt])), schema.name).toEqual(declared);
  for (const [n, f] of Object.entries(schema.fields)) {
    if (f.kind === 'message') expectSchemaMatches(f.schema(), present.get(Number(n))![1]!);
  }
}

describe('wire schemas agree with the generated encoders', () => {
  const header = {
    applicationAddress: 'a',
    serviceId: 's',
    sessionId: 'i',
    sessionStartBlockHeight: 1n,
    sessionEndBlockHeight: 2n,
  };
  const b = Buffer.from([1]);
  const relay = Relay.fromPartial({
    req: { meta: { sessionHeader: header, signature: b, supplierOperatorAddress: 'x' }, payload: b },
    res: {
      meta: { sessionHeader: header, supplierOperatorSignature: b },
      payload: b,
      payloadHash: b,
      relayMinerError: { codespace: 'c', code: 1, description: 'd', message: 'm' },
    },
  });

  it('Relay and its parts', () => {
    expectSchemaMatches(schemas.RELAY_SCHEMA, Relay.encode(relay).finish());
    expectSchemaMatches(
      schemas.RELAY_MINER_ERROR_SCHEMA,
      RelayMinerError.encode(relay.res!.relayMinerError!).finish(),
    );
  });

  it('POKTHTTPRequest and POKTHTTPResponse', () => {
    const header = new Map([['k', { key: 'k', values: ['v'] }]]);
    expectSchemaMatches(
      schemas.POKT_HTTP_REQUEST_SCHEMA,
      POKTHTTPRequest.encode({ method: 'GET', header, url: '/', bodyBz: b }).finish(),
    );
    expectSchemaMatches(
      schemas.POKT_HTTP_RESPONSE_SCHEMA,
      POKTHTTPResponse.encode({ statusCode: 200, header, bodyBz: b }).finish(),
    );
  });
});
