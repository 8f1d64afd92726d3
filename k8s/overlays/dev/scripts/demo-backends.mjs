// Starts the demo backends of the image (loopback, random ports) and forwards a fixed port on every
// pod address to each of them, so other pods reach them through the demo-backends Service.
import net from 'node:net';

const APP_DIR = process.env.APP_DIR ?? '/app';
export const PORTS = { jsonrpc: 8545, rest: 8546, websocket: 8548, streaming: 8549, grpc: 50051 };
const PORT_OFFSET = Number(process.env.PORT_OFFSET ?? 0);

const { startDemoBackends } = await import(`${APP_DIR}/dist/localnet/backends/index.js`);
const backends = await startDemoBackends();
const servers = [];

for (const [name, port] of Object.entries(PORTS)) {
  const target = new URL(backends[name].url);
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port), target.hostname);
    client.pipe(upstream).pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port + PORT_OFFSET, '0.0.0.0', resolve);
  });
  servers.push(server);
  process.stdout.write(`demo backend ${name}: 0.0.0.0:${port + PORT_OFFSET} -> ${target.host}\n`);
}

const stop = () => {
  for (const s of servers) s.close();
  void backends.close().then(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
