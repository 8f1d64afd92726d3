/**
 * One-shot cancellation for per-relay work (client went away, deadline passed), used on the relay
 * path instead of AbortController/AbortSignal.
 *
 * Why not AbortSignal: Node builds each AbortSignal as an EventTarget and then changes its
 * prototype. V8 keeps such objects through young-generation collections and moves them to the old
 * generation, together with everything their listeners reach, where only a full collection frees
 * them. In the relayer that was about 1 KB per relay promoted, i.e. more frequent full collections
 * and the latency spikes they bring (see `npm run bench -- relayer`, `proxy_gc_major`). A
 * Cancellation is a plain EventEmitter subclass and dies young with the relay.
 *
 * Code that takes a signal accepts the `CancelSignal` interface, which a real AbortSignal also
 * satisfies, so callers that already hold one (a timeout signal, a test) can pass it unchanged.
 * undici accepts a Cancellation as a request `signal` (it reads `aborted`/`reason` and uses
 * `addEventListener`/`removeEventListener`).
 */
import { EventEmitter } from 'node:events';

/** What code that can be cancelled reads: the flag, the reason, and `abort` listeners. */
export interface CancelSignal {
  readonly aborted: boolean;
  readonly reason: unknown;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

export class Cancellation extends EventEmitter implements CancelSignal {
  #aborted = false;
  #reason: unknown = undefined;

  get aborted(): boolean {
    return this.#aborted;
  }

  get reason(): unknown {
    return this.#reason;
  }

  /** Adds an `abort` listener; it runs at most once (a listener added after abort never runs). */
  addEventListener(type: 'abort', listener: () => void): void {
    if (type !== 'abort' || this.#aborted) return;
    this.once('abort', listener);
  }

  removeEventListener(type: 'abort', listener: () => void): void {
    if (type !== 'abort') return;
    this.removeListener('abort', listener);
  }

  /**
   * Marks this cancelled with `reason` and runs every listener once, in the order added; later
   * calls do nothing. A listener that throws does not stop the others: the first error is thrown
   * to the caller after all of them ran.
   */
  abort(reason: unknown = new Error('operation cancelled')): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    const listeners = this.listeners('abort') as (() => void)[];
    this.removeAllListeners('abort');
    let first: { error: unknown } | undefined;
    for (const fn of listeners) {
      try {
        fn();
      } catch (error) {
        first ??= { error };
      }
    }
    if (first !== undefined) throw first.error;
  }
}
