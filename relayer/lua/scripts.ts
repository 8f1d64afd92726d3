/**
 * The relayer's Lua scripts, loaded once through the shared loader (transport/scripts.ts) from the
 * `.lua` files beside this one (the build copies them into dist/). Each runs by SHA and is loaded
 * again on NOSCRIPT. Replies are typed loosely here and interpreted by one function per script in
 * relay-meter.ts.
 */
import { loadScriptFile } from '../../transport/index.js';

/** KEYS: meta, consumed, active set. See the file header. */
export const METER_CONSUME = loadScriptFile<unknown>(new URL('./meter-consume.lua', import.meta.url), 3);
/** KEYS: consumed. See the file header. */
export const METER_REVERT = loadScriptFile<unknown>(new URL('./meter-revert.lua', import.meta.url), 1);
