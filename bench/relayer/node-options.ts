/**
 * V8 settings of the relayer container (k8s/base/relayer-deployment.yaml; test/deploy checks the
 * two agree), used for both proxies the relayer bench starts.
 *
 * - NODE_OPTIONS: an 8 MiB semi-space. Relays allocate about 100 KB each, so a scavenge comes
 *   every ~60 ms at 1,000 relays/s and pauses for ~2–3 ms; a 64 MiB semi-space scavenged every
 *   ~0.5 s for ~10 ms each, and those pauses were what reached p99 at a fixed rate.
 * - Node flags (the container's `command`; NODE_OPTIONS refuses them): the old generation may grow
 *   to 5× what survived the last full collection before the next one (V8's own heuristic allowed
 *   ~1.6×). Under load that means a full collection every ~9 s instead of every ~2 s; each one
 *   stalls relays for 20–50 ms while marking competes for the cores. The price is memory: a
 *   relayer whose live heap is 40 MB peaks near 200 MB (the container limit is 2 GiB, the old
 *   space is capped at 1.5 GiB by NODE_OPTIONS).
 */
export const RELAYER_NODE_OPTIONS = '--max-old-space-size=1536 --max-semi-space-size=8';
export const RELAYER_NODE_FLAGS: readonly string[] = ['--heap-growing-percent=400'];
