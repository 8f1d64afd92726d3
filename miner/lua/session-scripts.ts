/**
 * Lua scripts of the session snapshot store and the relay consumer, loaded through the shared
 * loader (transport/scripts.ts) from the `.lua` files beside this one. Each file header documents
 * its KEYS, ARGV and reply.
 */
import { defineScript, loadScriptFile, type LuaScript } from '../../transport/index.js';

/** KEYS: snapshot, index, `active` state set. Returns 1 created, 0 existed. */
export const SESSION_ENSURE = loadScriptFile<number>(new URL('./session-ensure.lua', import.meta.url), 3);
/** KEYS: snapshot. Returns 1 counted, 0 no snapshot. */
export const SESSION_ADD_RELAYS = loadScriptFile<number>(
  new URL('./session-add-relays.lua', import.meta.url),
  1,
);
const SESSION_TRANSITION = loadScriptFile<number>(new URL('./session-transition.lua', import.meta.url), 3);
const transitionByArity = new Map<number, LuaScript<number>>();

/**
 * KEYS: snapshot, index, target state set, then one state set per accepted state, so the key
 * count depends on how many states are accepted. Returns 1 moved, 0 not.
 */
export function sessionTransitionScript(acceptedStates: number): LuaScript<number> {
  let s = transitionByArity.get(acceptedStates);
  if (s === undefined) {
    s = defineScript<number>(SESSION_TRANSITION.name, SESSION_TRANSITION.source, 3 + acceptedStates);
    transitionByArity.set(acceptedStates, s);
  }
  return s;
}
/** KEYS: snapshot. Returns 1 written, 0 no snapshot. */
export const SESSION_UPDATE = loadScriptFile<number>(new URL('./session-update.lua', import.meta.url), 1);
/** KEYS: dedup set. Returns one 1/0 per hash (added now / already present). */
export const SESSION_DEDUP_ADD = loadScriptFile<number[]>(
  new URL('./session-dedup-add.lua', import.meta.url),
  1,
);
