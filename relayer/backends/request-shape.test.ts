import { describe, expect, it } from 'vitest';
import { buildBackendHeaders, buildBackendUrl, cleanBackendPath, mergeBackendPath } from './request-shape.js';

describe('mergeBackendPath / cleanBackendPath (upstream mergeBackendPath + path.Clean)', () => {
  it.each([
    ['', '', '/', ''],
    ['', '', '/v1/x', '/v1/x'],
    ['/rpc', '', '/', '/rpc'],
    ['/rpc', '', '', '/rpc'],
    ['/rpc/', '', '/eth', '/rpc/eth'],
    ['/rpc', '/ext/bc/C/rpc', '/', '/ext/bc/C/rpc'],
    ['/rpc', '/ext/bc/C/rpc', '/ext/bc/C/rpc', '/ext/bc/C/rpc'],
    ['', '/ext', '/ext/a', '/ext/a'],
    ['', '/ext', '/extra', '/ext/extra'],
    ['', '/base/', '//a//b/', '/base/a/b'],
  ])('url %j base %j client %j → %j', (urlPath, base, client, want) => {
    expect(cleanBackendPath(mergeBackendPath(urlPath, base, client))).toBe(want);
  });

  it('builds the URL with endpoint query first, then the client query', () => {
    expect(buildBackendUrl(new URL('http://h:1/rpc?key=a'), undefined, '/v1//blocks/?limit=2').href).toBe(
      'http://h:1/rpc/v1/blocks?key=a&limit=2',
    );
    expect(buildBackendUrl(new URL('http://h:1'), undefined, '/').href).toBe('http://h:1/');
  });
});

describe('buildBackendHeaders', () => {
  it('inner first, wrapper fills gaps and Pocket-*, config overrides, then auth, identity and context', () => {
    expect(
      buildBackendHeaders({
        inner: { 'Content-Type': 'application/json', 'X-Inner': '1', Host: 'evil' },
        wrapper: {
          'Content-Type': 'application/x-protobuf',
          Accept: 'application/json',
          'User-Agent': 'path/1',
          'Pocket-Session-Id': 's1',
          'X-Other': 'dropped',
          Connection: 'keep-alive',
        },
        config: { 'X-Inner': 'config', 'X-Api': 'k' },
        auth: { username: 'u', password: 'p', bearer_token: 'ignored' },
        supplier: 'pokt1sup',
        serviceId: 'eth',
        application: 'pokt1app',
      }),
    ).toEqual({
      'content-type': 'application/json',
      'x-inner': 'config',
      accept: 'application/json',
      'user-agent': 'path/1',
      'pocket-session-id': 's1',
      'x-api': 'k',
      authorization: `Basic ${Buffer.from('u:p').toString('base64')}`,
      'accept-encoding': 'identity',
      'pocket-supplier': 'pokt1sup',
      'pocket-service': 'eth',
      'pocket-application': 'pokt1app',
    });
  });

  it('bearer, then plain token; no application header when unknown', () => {
    const base = { inner: {}, wrapper: {}, supplier: 's', serviceId: 'svc' };
    expect(buildBackendHeaders({ ...base, auth: { bearer_token: 't' } })).toEqual({
      authorization: 'Bearer t',
      'accept-encoding': 'identity',
      'pocket-supplier': 's',
      'pocket-service': 'svc',
    });
    expect(buildBackendHeaders({ ...base, auth: { plain_token: 'raw' } })['authorization']).toBe('raw');
  });
});
