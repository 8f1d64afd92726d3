/**
 * Task module of the ring verify pool (run by worker-host.ts on each thread). Imports only the
 * files it needs, never an index, so a worker starts quickly. Each worker keeps its own caches: decoded points and
 * hash-to-curve points per key, prepared rings per distinct ring.
 */
import { workerData } from 'node:worker_threads';
import { publicKeyId, verifyRingSignature, type PreparedRing, type RingVerifyResult } from './blsag.js';
import type { BackendName } from './ec-backend.js';
import { RingPointCache, tryPrepareRing } from './ring-points.js';
import { isBackendChoice, selectBackend } from './select-backend.js';
import { decodeVerifyBatch, splitRingBytes } from './verify-batch.js';

export type VerifyTask = { kind: 'verify'; batch: Uint8Array } | { kind: 'info' };

export interface VerifyTaskResult {
  backend: BackendName;
  results: RingVerifyResult[];
}

export interface VerifyWorkerData {
  backend?: unknown;
  ringCacheEntries?: unknown;
}

const data = ((workerData as { data?: unknown } | null)?.data ?? {}) as VerifyWorkerData;
const backend = selectBackend(isBackendChoice(data.backend) ? data.backend : 'auto');
const maxRings =
  typeof data.ringCacheEntries === 'number' && data.ringCacheEntries >= 1
    ? Math.floor(data.ringCacheEntries)
    : 4096;
const points = new RingPointCache(backend);
const rings = new Map<string, PreparedRing<unknown>>();

function preparedRing(
  ringBytes: Uint8Array,
  ringSize: number,
): PreparedRing<unknown> | readonly Uint8Array[] {
  const id = publicKeyId(ringBytes);
  const hit = rings.get(id);
  if (hit !== undefined) {
    rings.delete(id);
    rings.set(id, hit);
    return hit;
  }
  // Copy the keys out of the transferred batch buffer before caching them.
  const keys = splitRingBytes(Uint8Array.from(ringBytes), ringSize);
  const prepared = tryPrepareRing(backend, keys, points);
  // A key that is not a valid point can never equal a decoded signature key, so verifying
  // against the raw keys gives the same answer; such rings are simply not cached.
  if (!prepared.ok) return keys;
  rings.set(id, prepared.ring);
  if (rings.size > maxRings) {
    const oldest = rings.keys().next();
    if (oldest.done !== true) rings.delete(oldest.value);
  }
  return prepared.ring;
}

export default function verifyTask(task: VerifyTask): VerifyTaskResult {
  if (task.kind === 'info') return { backend: backend.name, results: [] };
  const results: RingVerifyResult[] = [];
  for (const item of decodeVerifyBatch(task.batch)) {
    const ring = preparedRing(item.ringBytes, item.ringSize);
    results.push(verifyRingSignature(backend, item.signature, item.message32, ring));
  }
  return { backend: backend.name, results };
}
