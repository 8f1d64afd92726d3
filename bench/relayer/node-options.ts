/**
 * V8 settings of the relayer container (k8s/base/relayer-deployment.yaml; test/deploy checks the
 * two agree), used for both proxies the relayer bench starts.
 *
 * - NODE_OPTIONS: an 8 MiB semi-space. Relays allocate about 100 KB each, so a scavenge comes
 *   every ~60 ms at 1,000 relays/s and pauses for ~2–3 ms; a 64 MiB semi-space scavenged every
 *   ~0.5 s for ~10 ms each, and those pauses were what reached p99 at a fixed rate.
 * - Node flags (the container's `command`; NODE_OPTIONS refuses them): the old generation may grow
 *   to 5× what survived the last full collection before the next one (V8's own heuristic allowed
 *   ~1.6×). Each full collection stalls relays for 20–40 ms while marking competes for the cores;
 *   with this setting a 30 s run at 1,000 relays/s saw 0–2 of them (p99 5–6.5 ms), with V8's
 *   default 5 (p99 7–9 ms). Only ~0.3 KB per relay reaches the old generation (no AbortSignal or
 *   ioredis Pipeline per relay, see core/cancellation.ts and transport/redis-client.ts), so the
 *   heap grows slowly; the price is memory: a relayer whose live heap is 40 MB may peak near
 *   200 MB (the container limit is 2 GiB, the old space is capped at 1.5 GiB by NODE_OPTIONS).
 */
export const RELAYER_NODE_OPTIONS = '--max-old-space-size=1536 --max-semi-space-size=8';
export const RELAYER_NODE_FLAGS: readonly string[] = ['--heap-growing-percent=400'];
