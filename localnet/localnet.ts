/**
 * A running simulator: a LocalChain behind the CometBFT RPC server, with blocks produced on a
 * timer (or only on demand when the interval is 0, as tests do).
 */
import { selectBackend } from '../rings/index.js';
import { LocalChain, type LocalChainDeps } from './chain.js';
import type { Genesis } from './genesis.js';
import { LocalnetControlError } from './errors.js';
import { RpcServer } from './rpc-server.js';

export interface LocalnetOptions {
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** Block interval; 0 disables the timer (blocks only through `advance`). */
  blockTimeMs: number;
  /** Produce the first block right away so queries have a committed height. */
  produceFirstBlock?: boolean;
  deps?: Partial<LocalChainDeps>;
}

export interface Localnet {
  chain: LocalChain;
  url: string;
  wsUrl: string;
  port: number;
  /** Produces `n` blocks now. */
  advance(n?: number): void;
  stop(): Promise<void>;
}

export async function startLocalnet(genesis: Genesis, opts: LocalnetOptions): Promise<Localnet> {
  if (!Number.isInteger(opts.blockTimeMs) || opts.blockTimeMs < 0) {
    throw new LocalnetControlError(
      `block time must be a non-negative integer of ms, got ${opts.blockTimeMs}`,
    );
  }
  const chain = new LocalChain(genesis, { backend: selectBackend('native'), ...opts.deps });
  if (opts.produceFirstBlock ?? true) chain.produceBlock();
  const server = new RpcServer(chain);
  const addr = await server.listen({ host: opts.host ?? '127.0.0.1', port: opts.port ?? 0 });
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const schedule = (): void => {
    if (stopped || opts.blockTimeMs === 0) return;
    timer = setTimeout(() => {
      chain.produceBlock();
      schedule();
    }, opts.blockTimeMs + chain.faults.blockDelayMs);
  };
  schedule();
  return {
    chain,
    url: addr.url,
    wsUrl: `ws://${addr.host}:${addr.port}/websocket`,
    port: addr.port,
    advance(n = 1) {
      for (let i = 0; i < n; i++) chain.produceBlock();
    },
    async stop() {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      await server.close();
    },
  };
}
