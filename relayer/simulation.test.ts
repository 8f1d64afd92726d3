import { Redis } from 'ioredis';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, IssueList } from '../core/config/index.js';
import { InvalidInputError, bytesToHex } from '../core/index.js';
import {
  PLACEHOLDER_RING_PUBLIC_KEY,
  privateKeyFromSecret,
  publicKeyFromPrivate,
} from '../protocol/index.js';
import { KeyBuilder } from '../transport/index.js';
import type { RelayerConfig } from './config.js';
import {
  SimulationAdmission,
  checkSimulationConfig,
  formatSimSessionId,
  parseSimSessionId,
  pinnedKeyProblem,
  simRefusal,
  type SimRejectCode,
  type SimulationConfig,
} from './simulation.js';

const enc = new TextEncoder();
const pubHex = (secret: string): string =>
  bytesToHex(publicKeyFromPrivate(privateKeyFromSecret(enc.encode(secret))));
const APP = pubHex('sim-unit-app');
const GW = pubHex('sim-unit-gw');
const PLACEHOLDER = bytesToHex(PLACEHOLDER_RING_PUBLIC_KEY);
/** x = 5 has no y on secp256k1. */
const OFF_CURVE = `02${'0'.repeat(63)}5`;

// Never connects: no command is sent by the tests in this file.
const idle = new Redis({ lazyConnect: true });
afterAll(() => idle.disconnect());

function build(config: SimulationConfig, services: readonly string[] = ['eth']): SimulationAdmission {
  return new SimulationAdmission({
    config,
    services,
    suppliers: { owns: () => false, addresses: [] },
    redis: idle,
    keys: new KeyBuilder(),
    verifier: { verify: () => Promise.reject(new Error('not used')) },
    registry: new Registry(),
    log: pino({ level: 'silent' }),
  });
}

describe('simulated session ids', () => {
  it('parses simv1:<unix seconds>:<nonce hex>', () => {
    expect(
      [
        'simv1:1800000000:0123456789abcdef',
        'simv1:0:A',
        'simv1:999999999999999:ff',
        'simv1:1800000000:',
        'simv1::ab',
        'simv1:-5:ab',
        'simv1:+5:ab',
        'simv1:1.5:ab',
        'simv1:1800000000:xyz',
        'simv1:1800000000:ab:cd',
        'simv2:1800000000:ab',
        'SIMV1:1800000000:ab',
        'simv1:1000000000000000:ab',
        ' simv1:1800000000:ab',
        'simv1:1800000000:ab\n',
        '',
        '0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
      ].map(parseSimSessionId),
    ).toEqual([1_800_000_000, 0, 999_999_999_999_999, ...new Array<undefined>(14).fill(undefined)]);
  });

  it('formats what it parses and refuses what it cannot', () => {
    expect(formatSimSessionId(1_800_000_000, '00ff00ff00ff00ff')).toBe('simv1:1800000000:00ff00ff00ff00ff');
    expect(() => formatSimSessionId(-1, 'ab')).toThrow(InvalidInputError);
    expect(() => formatSimSessionId(1.5, 'ab')).toThrow(InvalidInputError);
    expect(() => formatSimSessionId(1, '')).toThrow(InvalidInputError);
    expect(() => formatSimSessionId(1, 'nothex')).toThrow(InvalidInputError);
  });
});

describe('pinnedKeyProblem', () => {
  it('accepts a compressed point and refuses everything else', () => {
    expect(
      [
        APP,
        APP.toUpperCase(),
        '',
        APP.slice(0, 64),
        `${APP}00`,
        `04${APP.slice(2)}`,
        `0x${APP.slice(2)}`,
        `zz${APP.slice(2)}`,
        OFF_CURVE,
        PLACEHOLDER,
      ].map(pinnedKeyProblem),
    ).toEqual([
      undefined,
      undefined,
      'must be a 33-byte compressed secp256k1 public key in hex',
      'must be a 33-byte compressed secp256k1 public key in hex',
      'must be a 33-byte compressed secp256k1 public key in hex',
      'is not a compressed secp256k1 point on the curve',
      'must be a 33-byte compressed secp256k1 public key in hex',
      'must be a 33-byte compressed secp256k1 public key in hex',
      'is not a compressed secp256k1 point on the curve',
      'is the well-known ring placeholder key, whose private key is public; pin a key of your own',
    ]);
  });
});

const GOOD_IDENTITY = {
  key_id: 'probe',
  enabled: true,
  max_rps: 5,
  app_pubkey_hex: APP,
  gateway_pubkeys_hex: [GW],
  allowed_services: [],
};

describe('checkSimulationConfig (relayer.md §9)', () => {
  function issues(sim: SimulationConfig, services: readonly string[] = ['eth']): unknown[] {
    const list = new IssueList();
    checkSimulationConfig(sim, services, list);
    return list.items;
  }
  const base = { enabled: true, max_concurrent: 32, freshness_window_seconds: 30 };

  it('accepts a valid section', () => {
    expect(issues({ ...base, identities: [GOOD_IDENTITY] })).toEqual([]);
  });

  it('checks nothing when disabled', () => {
    expect(issues({ ...base, enabled: false, identities: [] })).toEqual([]);
    expect(
      issues({
        ...base,
        enabled: false,
        identities: [{ ...GOOD_IDENTITY, app_pubkey_hex: PLACEHOLDER, gateway_pubkeys_hex: [] }],
      }),
    ).toEqual([]);
  });

  it('requires identities when enabled', () => {
    expect(issues({ ...base, identities: [] })).toEqual([
      {
        path: 'simulation.identities',
        message: 'simulation is enabled but no identities are pinned; add one or disable simulation',
      },
    ]);
  });

  it('reports every problem of every identity with its path', () => {
    expect(
      issues(
        {
          ...base,
          identities: [
            GOOD_IDENTITY,
            {
              key_id: 'probe',
              enabled: true,
              max_rps: 0,
              app_pubkey_hex: PLACEHOLDER,
              gateway_pubkeys_hex: [GW, OFF_CURVE, 'abc'],
              allowed_services: ['eth', 'btc'],
              not_after: 'tomorrow',
            },
            { ...GOOD_IDENTITY, key_id: '', app_pubkey_hex: '', gateway_pubkeys_hex: [] },
          ],
        },
        ['eth'],
      ),
    ).toEqual([
      { path: 'simulation.identities[1].key_id', message: "duplicate key_id 'probe'" },
      {
        path: 'simulation.identities[1].app_pubkey_hex',
        message: 'is the well-known ring placeholder key, whose private key is public; pin a key of your own',
      },
      {
        path: 'simulation.identities[1].gateway_pubkeys_hex[1]',
        message: 'is not a compressed secp256k1 point on the curve',
      },
      {
        path: 'simulation.identities[1].gateway_pubkeys_hex[2]',
        message: 'must be a 33-byte compressed secp256k1 public key in hex',
      },
      {
        path: 'simulation.identities[1].not_after',
        message: 'must be an RFC 3339 timestamp, e.g. 2027-01-01T00:00:00Z',
      },
      { path: 'simulation.identities[1].max_rps', message: 'must be > 0' },
      {
        path: 'simulation.identities[1].allowed_services',
        message: "service 'btc' is not configured",
      },
      { path: 'simulation.identities[2].key_id', message: 'key_id is required' },
      {
        path: 'simulation.identities[2].app_pubkey_hex',
        message: 'must be a 33-byte compressed secp256k1 public key in hex',
      },
      {
        path: 'simulation.identities[2].gateway_pubkeys_hex',
        message: 'at least one gateway public key is required',
      },
    ]);
  });

  it('refuses the placeholder as a gateway key too', () => {
    expect(
      issues({ ...base, identities: [{ ...GOOD_IDENTITY, gateway_pubkeys_hex: [PLACEHOLDER] }] }),
    ).toEqual([
      {
        path: 'simulation.identities[0].gateway_pubkeys_hex[0]',
        message: 'is the well-known ring placeholder key, whose private key is public; pin a key of your own',
      },
    ]);
  });
});

describe('simRefusal status map (relayer.md §9)', () => {
  it('maps every code to its HTTP status, gRPC code, close code and metric result', () => {
    const codes: SimRejectCode[] = [
      'SIM_CONCURRENCY_LIMIT',
      'SIM_RATE_LIMITED',
      'SIM_UNKNOWN_KEY_ID',
      'SIM_IDENTITY_DISABLED',
      'SIM_IDENTITY_EXPIRED',
      'SIM_SUPPLIER_MISSING',
      'SIM_SUPPLIER_NOT_LOADED',
      'SIM_INVALID_REQUEST',
      'SIM_IDENTITY_MISMATCH',
      'SIM_SERVICE_UNKNOWN',
      'SIM_SERVICE_NOT_ALLOWED',
      'SIM_BAD_SESSION_ID',
      'SIM_STALE',
      'SIM_REPLAY',
      'SIM_DEDUP_UNAVAILABLE',
      'SIM_BAD_SIGNATURE',
      'SIM_VERIFY_UNAVAILABLE',
    ];
    expect(
      codes.map((c) => {
        const r = simRefusal(c, 'why');
        return [c, r.httpStatus, r.grpcCode, r.wsCloseCode, r.result];
      }),
    ).toEqual([
      ['SIM_CONCURRENCY_LIMIT', 429, 8, 1013, 'rate_limited'],
      ['SIM_RATE_LIMITED', 429, 8, 1013, 'rate_limited'],
      ['SIM_UNKNOWN_KEY_ID', 403, 7, 4001, 'verify_failed'],
      ['SIM_IDENTITY_DISABLED', 403, 7, 4001, 'verify_failed'],
      ['SIM_IDENTITY_EXPIRED', 403, 7, 4001, 'verify_failed'],
      ['SIM_SUPPLIER_MISSING', 400, 3, 4001, 'supplier_not_loaded'],
      ['SIM_SUPPLIER_NOT_LOADED', 403, 7, 4001, 'supplier_not_loaded'],
      ['SIM_INVALID_REQUEST', 403, 7, 4001, 'verify_failed'],
      ['SIM_IDENTITY_MISMATCH', 403, 7, 4001, 'identity_mismatch'],
      ['SIM_SERVICE_UNKNOWN', 404, 5, 4001, 'service_unknown'],
      ['SIM_SERVICE_NOT_ALLOWED', 403, 7, 4001, 'service_not_allowed'],
      ['SIM_BAD_SESSION_ID', 400, 3, 4001, 'verify_failed'],
      ['SIM_STALE', 403, 7, 4001, 'verify_failed'],
      ['SIM_REPLAY', 409, 6, 4001, 'replay_rejected'],
      ['SIM_DEDUP_UNAVAILABLE', 503, 14, 4001, 'dedup_unavailable'],
      ['SIM_BAD_SIGNATURE', 403, 7, 4001, 'verify_failed'],
      ['SIM_VERIFY_UNAVAILABLE', 503, 14, 4001, 'verify_failed'],
    ]);
  });

  it('builds the whole refusal value', () => {
    expect(simRefusal('SIM_REPLAY', 'signature already seen (replay)')).toEqual({
      ok: false,
      code: 'SIM_REPLAY',
      result: 'replay_rejected',
      reason: 'signature already seen (replay)',
      httpStatus: 409,
      grpcCode: 6,
      wsCloseCode: 4001,
      message: 'simulation rejected: signature already seen (replay)',
    });
  });
});

describe('SimulationAdmission construction', () => {
  it('takes the relayer config section as it is typed', () => {
    const section: RelayerConfig['simulation'] = {
      enabled: true,
      max_concurrent: 4,
      freshness_window_seconds: 30,
      identities: [{ ...GOOD_IDENTITY, not_after: '2099-01-01T00:00:00Z' }],
    };
    expect(build(section).enabled).toBe(true);
  });

  it('throws ConfigError listing every problem when enabled', () => {
    let err: unknown;
    try {
      build({
        enabled: true,
        max_concurrent: 4,
        freshness_window_seconds: 30,
        identities: [{ ...GOOD_IDENTITY, app_pubkey_hex: PLACEHOLDER, gateway_pubkeys_hex: [OFF_CURVE] }],
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).issues).toEqual([
      {
        path: 'simulation.identities[0].app_pubkey_hex',
        message: 'is the well-known ring placeholder key, whose private key is public; pin a key of your own',
      },
      {
        path: 'simulation.identities[0].gateway_pubkeys_hex[0]',
        message: 'is not a compressed secp256k1 point on the curve',
      },
    ]);
  });

  it('warns at start-up about identities already past not_after, without refusing to start', () => {
    const lines: Record<string, unknown>[] = [];
    const adm = new SimulationAdmission({
      config: {
        enabled: true,
        max_concurrent: 4,
        freshness_window_seconds: 30,
        identities: [
          { ...GOOD_IDENTITY, key_id: 'old', not_after: '2020-01-01T00:00:00Z' },
          { ...GOOD_IDENTITY, key_id: 'new', not_after: '2099-01-01T00:00:00Z' },
        ],
      },
      services: ['eth'],
      suppliers: { owns: () => false, addresses: [] },
      redis: idle,
      keys: new KeyBuilder(),
      verifier: { verify: () => Promise.reject(new Error('not used')) },
      registry: new Registry(),
      log: pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) }),
      nowMs: () => Date.parse('2026-01-01T00:00:00Z'),
    });
    expect(adm.enabled).toBe(true);
    expect(
      lines.map(({ level, component, key_id, not_after, identities, max_concurrent, msg }) => ({
        level,
        component,
        key_id,
        not_after,
        identities,
        max_concurrent,
        msg,
      })),
    ).toEqual([
      {
        level: 40,
        component: 'simulation',
        key_id: 'old',
        not_after: '2020-01-01T00:00:00Z',
        identities: undefined,
        max_concurrent: undefined,
        msg: 'simulation identity has expired; its relays will be refused',
      },
      {
        level: 30,
        component: 'simulation',
        key_id: undefined,
        not_after: undefined,
        identities: 2,
        max_concurrent: 4,
        msg: 'simulated relays enabled',
      },
    ]);
  });

  it('loads nothing and reports disabled when the section is off, whatever it holds', () => {
    const adm = build({
      enabled: false,
      max_concurrent: 4,
      freshness_window_seconds: 30,
      identities: [{ ...GOOD_IDENTITY, app_pubkey_hex: 'junk' }],
    });
    expect(adm.enabled).toBe(false);
    expect(adm.inFlight).toBe(0);
  });
});
