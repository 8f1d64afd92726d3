/**
 * Child entry: the demo JSON-RPC backend (localnet), alone in its process so it never shares an
 * event loop with the relayer or the load client. Ready message: `{ url }`.
 */
import { JsonRpcBackend } from '../../localnet/backends/index.js';
import { parentChannel, processUsage } from './child-process.js';

const parent = parentChannel();
const backend = await JsonRpcBackend.start();
let stopped = false;
const stop = async (): Promise<void> => {
  if (stopped) return;
  stopped = true;
  await backend.close().catch(() => undefined);
  process.exit(0);
};
parent.on('stop', stop);
parent.onDisconnect(() => void stop());
parent.on('usage', () => parent.send({ type: 'usage', ...processUsage() }));
parent.on('stats', () => parent.send({ type: 'stats', requests: backend.requestCount }));
await parent.send({ type: 'ready', url: backend.url });
