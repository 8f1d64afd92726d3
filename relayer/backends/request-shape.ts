/**
 * How a relay's inner HTTP request becomes the backend request (relayer.md §3.3, upstream
 * `mergeBackendPath`, `normalizeBackendPath`, `copyHeaders`): path merge and clean, query merge,
 * header forwarding, config headers, auth, forced `Accept-Encoding: identity`, Pocket context.
 */
import { posix } from 'node:path';

/** Go `path.Clean` for absolute paths; '' stays ''. */
export function cleanBackendPath(p: string): string {
  if (p === '') return '';
  const n = posix.normalize(p);
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
}

/** base_path wins over the URL path; `/` counts as empty; an already-prefixed client path is not prefixed twice. */
export function mergeBackendPath(urlPath: string, basePath: string, clientPath: string): string {
  let prefix = basePath.replace(/\/+$/, '');
  if (prefix === '') prefix = urlPath.replace(/\/+$/, '');
  const client = clientPath === '/' ? '' : clientPath;
  if (prefix === '') return client;
  if (client === '') return prefix;
  if (client.startsWith(prefix)) {
    const rest = client.slice(prefix.length);
    if (rest === '' || rest.startsWith('/')) return cleanBackendPath(posix.join('/', client));
  }
  return cleanBackendPath(posix.join(prefix, client));
}

/**
 * Absolute backend URL for one attempt: endpoint origin, merged and cleaned path, endpoint query
 * then client query (Go `url.Values.Encode` sorts keys; we keep both lists in order).
 */
export function buildBackendUrl(endpoint: URL, basePath: string | undefined, clientUrl: string): URL {
  const client = new URL(clientUrl, 'http://relay.invalid');
  const out = new URL(endpoint.href);
  out.pathname =
    cleanBackendPath(
      mergeBackendPath(endpoint.pathname === '/' ? '' : endpoint.pathname, basePath ?? '', client.pathname),
    ) || '/';
  const q = new URLSearchParams(endpoint.search);
  for (const [k, v] of client.searchParams) q.append(k, v);
  const qs = q.toString();
  out.search = qs === '' ? '' : `?${qs}`;
  return out;
}

export type HeaderMap = Record<string, string>;

export interface BackendAuth {
  username?: string | undefined;
  password?: string | undefined;
  bearer_token?: string | undefined;
  plain_token?: string | undefined;
}

export interface HeaderContext {
  /** Headers of the relay's inner POKTHTTPRequest (what the backend expects). */
  inner: HeaderMap;
  /** Headers of the wrapper HTTP request the gateway sent to the relayer. */
  wrapper: HeaderMap;
  /** `services.<id>.backends.<type>.headers`. */
  config?: Readonly<Record<string, string>> | undefined;
  auth?: Readonly<BackendAuth> | undefined;
  supplier: string;
  serviceId: string;
  application?: string | undefined;
}

const WRAPPER_FILL_IN = ['content-type', 'accept', 'accept-encoding', 'user-agent'];

/** The backend request headers, lower-case names, per §3.3 in its order of precedence. */
export function buildBackendHeaders(ctx: HeaderContext): HeaderMap {
  const h: HeaderMap = {};
  const set = (k: string, v: string): void => {
    h[k.toLowerCase()] = v;
  };
  for (const [k, v] of Object.entries(ctx.inner)) set(k, v);
  const wrapper = Object.fromEntries(Object.entries(ctx.wrapper).map(([k, v]) => [k.toLowerCase(), v]));
  for (const k of WRAPPER_FILL_IN) {
    const v = wrapper[k];
    if ((h[k] ?? '') === '' && v !== undefined && v !== '') set(k, v);
  }
  for (const [k, v] of Object.entries(wrapper)) if (k.startsWith('pocket-')) set(k, v);
  for (const [k, v] of Object.entries(ctx.config ?? {})) set(k, v);
  const a = ctx.auth;
  if (a !== undefined) {
    if ((a.username ?? '') !== '' && (a.password ?? '') !== '') {
      set('authorization', `Basic ${Buffer.from(`${a.username}:${a.password}`).toString('base64')}`);
    } else if ((a.bearer_token ?? '') !== '') set('authorization', `Bearer ${a.bearer_token}`);
    else if ((a.plain_token ?? '') !== '') set('authorization', a.plain_token!);
  }
  set('accept-encoding', 'identity');
  set('pocket-supplier', ctx.supplier);
  set('pocket-service', ctx.serviceId);
  if ((ctx.application ?? '') !== '') set('pocket-application', ctx.application!);
  // Hop-by-hop headers belong to the relayer↔gateway connection, never to the backend one.
  for (const k of [
    'connection',
    'keep-alive',
    'transfer-encoding',
    'upgrade',
    'host',
    'content-length',
    'te',
    'trailer',
    'proxy-connection',
  ])
    delete h[k];
  return h;
}
