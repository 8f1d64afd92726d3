/**
 * The miner's Lua scripts, loaded once through the shared loader (transport/scripts.ts) from the
 * `.lua` files beside this one (the build copies them into dist/). Each runs by SHA and is loaded
 * again on NOSCRIPT. Replies are interpreted by one function per script (leases.ts for the lease
 * trio).
 */
import { loadScriptFile } from '../../transport/index.js';

/** KEYS: lease. ARGV: holder id, ttl ms. Returns 1 held, 0 taken by another, -2 bad arguments. */
export const LEASE_ACQUIRE = loadScriptFile<number>(new URL('./lease-acquire.lua', import.meta.url), 1);
/** KEYS: lease. ARGV: holder id, ttl ms. Returns 1 renewed, 0 lost, -2 bad arguments. */
export const LEASE_RENEW = loadScriptFile<number>(new URL('./lease-renew.lua', import.meta.url), 1);
/** KEYS: lease. ARGV: holder id. Returns 1 released, 0 not held, -2 bad arguments. */
export const LEASE_RELEASE = loadScriptFile<number>(new URL('./lease-release.lua', import.meta.url), 1);
