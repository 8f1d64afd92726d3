/**
 * Child entry: the baseline of the relayer bench. A minimal uWebSockets.js app that reads the
 * request body, forwards it with an undici Pool to the backend and returns the backend's status
 * and body: no decode, no validation, no signing, no Redis. Same listener library and same
 * backend client (and connection limit) as the relayer, so the difference to the full relayer is
 * the relay pipeline itself.
 *
 * Env: BENCH_BACKEND_URL (required), BENCH_BACKEND_CONNECTIONS (default 500, the relayer's
 * http_transport.max_conns_per_host default). Ready message: `{ port }`.
 */
import { STATUS_CODES } from 'node:http';
import { Pool } from 'undici';
import uWS from 'uWebSockets.js';
import { answerProfileRequests, parentChannel, processUsage } from './child-process.js';

const backendUrl = process.env['BENCH_BACKEND_URL'];
if (backendUrl === undefined || backendUrl === '') throw new Error('BENCH_BACKEND_URL is required');
const connections = Number(process.env['BENCH_BACKEND_CONNECTIONS'] ?? 500);

const parent = parentChannel();
const pool = new Pool(new URL(backendUrl).origin, { connections, keepAliveTimeout: 90_000 });
let served = 0;
let failed = 0;

async function forward(
  res: uWS.HttpResponse,
  state: { aborted: boolean },
  path: string,
  method: string,
  body: Buffer,
): Promise<void> {
  try {
    const r = await pool.request({
      path,
      method: method === 'get' ? 'GET' : 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    const answer = Buffer.from(await r.body.arrayBuffer());
    served++;
    if (state.aborted) return;
    res.cork(() => {
      res
        .writeStatus(`${r.statusCode} ${STATUS_CODES[r.statusCode] ?? 'Unknown'}`)
        .writeHeader('Content-Type', 'application/json')
        .end(answer);
    });
  } catch {
    failed++;
    if (state.aborted) return;
    res.cork(() => {
      res.writeStatus('502 Bad Gateway').end();
    });
  }
}

const app = uWS.App();
app.any('/*', (res, req) => {
  const path = req.getUrl();
  const method = req.getMethod();
  const state = { aborted: false };
  res.onAborted(() => {
    state.aborted = true;
  });
  const chunks: Buffer[] = [];
  res.onData((ab, isLast) => {
    // The ArrayBuffer is only valid during this call: copy it.
    chunks.push(Buffer.from(new Uint8Array(ab)));
    if (!isLast) return;
    void forward(res, state, path, method, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
  });
});
const socket = await new Promise<uWS.us_listen_socket | false>((resolve) =>
  app.listen('127.0.0.1', 0, resolve),
);
if (socket === false) throw new Error('bare proxy: cannot listen on 127.0.0.1');

let stopped = false;
const stop = async (): Promise<void> => {
  if (stopped) return;
  stopped = true;
  uWS.us_listen_socket_close(socket);
  await pool.close().catch(() => undefined);
  process.exit(0);
};
parent.on('stop', stop);
parent.onDisconnect(() => void stop());
answerProfileRequests(parent);
parent.on('usage', () => parent.send({ type: 'usage', ...processUsage() }));
parent.on('stats', () => parent.send({ type: 'stats', served, failed }));
await parent.send({ type: 'ready', port: uWS.us_socket_local_port(socket) });
