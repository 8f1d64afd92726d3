/**
 * smst.json: every sequence (root, sum, count, store writes and deletes after each operation, the
 * final node store, gets), every closest proof (decompacted and compact fields, exact gob bytes,
 * proven value, the chain's verdict), path derivation, root parsing and every negative proof.
 * Sequences, gets and proofs run twice: on the in-memory store and on the Redis store (real
 * Redis; proofs and gets there come from a trie re-opened from Redis by a new owner).
 */
import { describe, expect, it } from 'vitest';
import { RelayMinerError, bytesToHex, hexToBytes } from '../../core/index.js';
import { SmstRedisStore } from '../../miner/index.js';
import { proofPath } from '../../protocol/index.js';
import {
  GOB_TYPE_PREFIX,
  InMemoryMapStore,
  SparseMerkleSumTrie,
  checkClaimRoot,
  checkClosestProofBytes,
  compactClosestProof,
  decodeCompactClosestProof,
  decompactClosestProof,
  encodeCompactClosestProof,
  parseMerkleSumRoot,
  type ClosestProof,
  type ClosestProofVerdict,
  type CompactClosestProof,
  type MapStore,
  type SmstOptions,
  type StoreBatch,
} from '../../protocol/smst/index.js';
import { useRedis } from '../helpers/redis.js';
import { caseTitle, hasVectorFile, loadVectors } from '../helpers/vectors.js';

const FILE = 'smst.json';
const v: any = hasVectorFile(FILE) ? loadVectors(FILE) : undefined;
const SUPPLIER = 'pokt1conformancesupplier';

type StoreKind = 'memory' | 'redis';

const hexOrNull = (b: Uint8Array | null): string | null => (b === null ? null : bytesToHex(b));

function closestProofJson(p: ClosestProof): unknown {
  return {
    path_hex: bytesToHex(p.path),
    flipped_bits: p.flippedBits,
    depth: p.depth,
    closest_path_hex: bytesToHex(p.closestPath),
    closest_value_hash_hex: hexOrNull(p.closestValueHash),
    side_nodes_hex: p.closestProof.sideNodes.map(bytesToHex),
    non_membership_leaf_data_hex: hexOrNull(p.closestProof.nonMembershipLeafData),
    sibling_data_hex: hexOrNull(p.closestProof.siblingData),
  };
}

function compactProofJson(c: CompactClosestProof): unknown {
  const inner = c.closestProof!;
  return {
    path_hex: bytesToHex(c.path),
    flipped_bits_hex: c.flippedBits.map(bytesToHex),
    depth_hex: bytesToHex(c.depth),
    closest_path_hex: bytesToHex(c.closestPath),
    closest_value_hash_hex: hexOrNull(c.closestValueHash),
    closest_proof: {
      side_nodes_hex: inner.sideNodes.map(bytesToHex),
      non_membership_leaf_data_hex: hexOrNull(inner.nonMembershipLeafData),
      bit_mask_hex: bytesToHex(inner.bitMask),
      num_side_nodes: Number(inner.numSideNodes),
      sibling_data_hex: hexOrNull(inner.siblingData),
    },
  };
}

function verdictJson(verdict: ClosestProofVerdict): Record<string, boolean> {
  return {
    decode_ok: verdict.decodeOk,
    decompact_ok: verdict.decompactOk,
    path_matches: verdict.pathMatches,
    verify_closest_proof: verdict.verified,
    accepted: verdict.accepted,
  };
}

/** The contract part of a vector's verification object (go_error / go_panic are informative). */
function expectedVerdict(verification: any): Record<string, boolean> {
  const { decode_ok, decompact_ok, path_matches, verify_closest_proof, accepted } = verification;
  return { decode_ok, decompact_ok, path_matches, verify_closest_proof, accepted };
}

function trieOptions(seq: any): SmstOptions {
  return { valueHasher: seq.value_hasher === 'sha256' ? 'sha256' : 'none' };
}

/** Wraps a store: every commit is recorded and mirrored into an in-memory reference store. */
function recording(inner: MapStore): { store: MapStore; batches: StoreBatch[]; mirror: InMemoryMapStore } {
  const batches: StoreBatch[] = [];
  const mirror = new InMemoryMapStore();
  return {
    batches,
    mirror,
    store: {
      get: (d) => inner.get(d),
      commit: (b) => {
        batches.push(b);
        mirror.commit(b);
        return inner.commit(b);
      },
    },
  };
}

/** Applies one vector operation; returns the error code when it failed. */
async function applyOp(trie: SparseMerkleSumTrie, op: any): Promise<string | undefined> {
  try {
    if (op.op === 'update') {
      await trie.update(hexToBytes(op.key_hex), hexToBytes(op.value_hex), BigInt(op.weight));
    } else {
      await trie.delete(hexToBytes(op.key_hex));
    }
    return undefined;
  } catch (err) {
    if (err instanceof RelayMinerError) return err.code;
    throw err;
  }
}

function storeJson(entries: Iterable<[string, Uint8Array]>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, val] of entries) out[k] = bytesToHex(val);
  return out;
}

describe.runIf(v !== undefined)(FILE, () => {
  const r = useRedis();
  const sequences: any[] = v?.sequences ?? [];

  it(caseTitle(FILE, 0, 'gob_type_prefix_hex'), () => {
    expect(bytesToHex(GOB_TYPE_PREFIX)).toBe(v.gob_type_prefix_hex);
  });

  describe('path_derivation', () => {
    (v?.path_derivation ?? []).forEach((c: any, i: number) => {
      it(caseTitle(`${FILE}:path_derivation`, i, c.session_id.slice(0, 16)), () => {
        expect(bytesToHex(proofPath(hexToBytes(c.block_hash_hex), c.session_id))).toBe(c.path_hex);
      });
    });
  });

  describe('root_parsing', () => {
    (v?.root_parsing ?? []).forEach((c: any, i: number) => {
      it(caseTitle(`${FILE}:root_parsing`, i, `${c.root_hex.length / 2} bytes`), () => {
        const root = hexToBytes(c.root_hex);
        if (c.sum_ok) {
          const parsed = parseMerkleSumRoot(root);
          expect({ sum: parsed.sum.toString(), count: parsed.count.toString() }).toEqual({
            sum: c.sum,
            count: c.count,
          });
        } else {
          expect(() => parseMerkleSumRoot(root)).toThrow(
            expect.objectContaining({ code: 'SMST_ROOT_INVALID' }),
          );
        }
        expect(checkClaimRoot(root).ok).toBe(c.claim_root_valid);
      });
    });
  });

  describe('negative_proofs', () => {
    (v?.negative_proofs ?? []).forEach((c: any, i: number) => {
      it(caseTitle(`${FILE}:negative_proofs`, i, c.name), () => {
        const bytes = hexToBytes(c.proof_bytes_hex);
        const verdict = checkClosestProofBytes(
          bytes,
          hexToBytes(c.root_hex),
          hexToBytes(c.expected_path_hex),
        );
        expect(verdictJson(verdict)).toEqual(expectedVerdict(c.verification));
        expect(verdict.rejection === undefined).toBe(c.verification.accepted);
        if (!c.verification.decode_ok) {
          expect(() => decodeCompactClosestProof(bytes)).toThrow(
            expect.objectContaining({ code: 'SMST_PROOF_MALFORMED' }),
          );
        } else if (!c.verification.decompact_ok) {
          expect(() => decompactClosestProof(decodeCompactClosestProof(bytes))).toThrow(
            expect.objectContaining({ code: 'SMST_PROOF_INVALID' }),
          );
        }
      });
    });
  });

  const memoryTries = new Map<number, SparseMerkleSumTrie[]>();

  /** The final trie of sequence `si`, and for memory also a trie re-imported from its store. */
  async function finalTries(kind: StoreKind, si: number): Promise<SparseMerkleSumTrie[]> {
    const seq = sequences[si];
    const opts = trieOptions(seq);
    if (kind === 'memory') {
      const cached = memoryTries.get(si);
      if (cached) return cached;
      const store = new InMemoryMapStore();
      const trie = SparseMerkleSumTrie.create(store, opts);
      for (const op of seq.ops) {
        await applyOp(trie, op);
        await trie.commit();
      }
      const tries = [trie, SparseMerkleSumTrie.import(store, trie.root(), opts)];
      memoryTries.set(si, tries);
      return tries;
    }
    const cfg = { supplier: SUPPLIER, session_id: `seq${si}` };
    const built = await SmstRedisStore.open(r.deps(), cfg, opts);
    for (const op of seq.ops) {
      await applyOp(built.trie, op);
      await built.trie.commit();
    }
    await built.store.checkpoint();
    const reopened = await SmstRedisStore.open(r.deps(), cfg, opts);
    expect(reopened.resumedFrom).toBe('live_root');
    return [reopened.trie];
  }

  for (const kind of ['memory', 'redis'] as const) {
    describe(`sequences on the ${kind} store`, () => {
      sequences.forEach((seq: any, si: number) => {
        it(caseTitle(`${FILE}:sequences`, si, `${seq.name} [${kind}]`), async () => {
          const opts = trieOptions(seq);
          const cfg = { supplier: SUPPLIER, session_id: `seq${si}` };
          const opened = kind === 'redis' ? await SmstRedisStore.open(r.deps(), cfg, opts) : undefined;
          const rec = recording(opened?.store ?? new InMemoryMapStore());
          const trie = SparseMerkleSumTrie.create(rec.store, opts);
          for (const [oi, op] of (seq.ops as any[]).entries()) {
            const code = await applyOp(trie, op);
            await trie.commit();
            await opened?.store.flush();
            const batch = rec.batches.at(-1)!;
            const got: Record<string, unknown> = {
              op: oi,
              root_hex: bytesToHex(trie.root()),
              sum: trie.sum().toString(),
              count: trie.count().toString(),
              error: code,
            };
            const want: Record<string, unknown> = {
              op: oi,
              root_hex: op.root_hex,
              sum: op.sum,
              count: op.count,
              error: op.error === undefined ? undefined : 'SMST_KEY_NOT_FOUND',
            };
            if (op.store_writes !== undefined) {
              got['store_writes'] = storeJson(batch.writes.map(([d, val]) => [bytesToHex(d), val]));
              got['store_deletes'] = batch.deletes.map(bytesToHex);
              want['store_writes'] = op.store_writes;
              want['store_deletes'] = op.store_deletes;
            }
            expect(got).toEqual(want);
          }
          const reference = storeJson(rec.mirror.entries());
          if (seq.final_store !== undefined) expect(reference).toEqual(seq.final_store);
          if (opened !== undefined) {
            await opened.store.checkpoint();
            const inRedis = await r.client.hgetallBuffer(opened.store.keys.nodes);
            expect(storeJson(Object.entries(inRedis))).toEqual(reference);
            const liveRoot = await r.client.getBuffer(opened.store.keys.liveRoot);
            expect(liveRoot === null ? null : bytesToHex(liveRoot)).toBe(bytesToHex(trie.root()));
          }
        });

        if ((seq.gets ?? []).length > 0) {
          it(caseTitle(`${FILE}:sequences`, si, `${seq.name} gets [${kind}]`), async () => {
            for (const trie of await finalTries(kind, si)) {
              const got = [];
              for (const g of seq.gets) {
                const leaf = await trie.get(hexToBytes(g.key_hex));
                got.push({
                  key_hex: g.key_hex,
                  found: leaf !== null,
                  value_hex: leaf === null ? '' : bytesToHex(leaf.value),
                  weight: leaf === null ? '0' : leaf.weight.toString(),
                });
              }
              expect(got).toEqual(seq.gets);
            }
          });
        }

        (seq.proofs ?? []).forEach((p: any, pi: number) => {
          it(caseTitle(`${FILE}:sequences`, si, `${p.name} #${pi} [${kind}]`), async () => {
            const path = hexToBytes(p.path_hex);
            if (p.path_from !== undefined) {
              expect(
                bytesToHex(proofPath(hexToBytes(p.path_from.block_hash_hex), p.path_from.session_id)),
              ).toBe(p.path_hex);
            }
            for (const trie of await finalTries(kind, si)) {
              expect(bytesToHex(trie.root())).toBe(p.root_hex);
              const proof = await trie.proveClosest(path);
              expect(closestProofJson(proof)).toEqual(p.closest_proof);
              const compact = compactClosestProof(proof);
              expect(compactProofJson(compact)).toEqual(p.compact_proof);
              const bytes = encodeCompactClosestProof(compact);
              expect(bytesToHex(bytes)).toBe(p.proof_bytes_hex);
              expect(bytesToHex(await trie.proveClosestBytes(path))).toBe(p.proof_bytes_hex);
              expect(compactProofJson(decodeCompactClosestProof(bytes))).toEqual(p.compact_proof);
              const cvh = proof.closestValueHash;
              expect({
                value: cvh === null ? '' : bytesToHex(cvh.subarray(0, cvh.length - 16)),
                weight:
                  cvh === null
                    ? '0'
                    : new DataView(cvh.buffer, cvh.byteOffset).getBigUint64(cvh.length - 16).toString(),
              }).toEqual({ value: p.proven_value_hex, weight: p.proven_weight });
              const verdict = checkClosestProofBytes(bytes, hexToBytes(p.root_hex), path);
              expect(verdictJson(verdict)).toEqual(expectedVerdict(p.verification));
            }
          });
        });
      });
    });
  }
});
