/**
 * NODE_OPTIONS of the relayer container (k8s/base/relayer-deployment.yaml; test/deploy checks the
 * two agree), used for the proxies the relayer bench starts. A 64 MiB young generation means fewer
 * scavenges under relay load, and their pauses are what reach p99 at a fixed rate.
 */
export const RELAYER_NODE_OPTIONS = '--max-old-space-size=1536 --max-semi-space-size=64';
