import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../core/index.js';
import type { KeyBuilder } from '../transport/index.js';
import { useRedis } from '../test/helpers/redis.js';
import {
  SESSION_STATES,
  SessionSnapshotCorruptError,
  SessionStore,
  TERMINAL_STATES,
  formatRfc3339Nano,
  type SessionFields,
  type SessionIdentity,
  type SessionSnapshot,
  type SessionState,
} from './session-store.js';

const log = pino({ level: 'silent' });
const SUPPLIER = 'pokt1sessionstoresupplier';
const T0 = Date.UTC(2026, 10, 23, 12, 0, 0, 120);
const T0_TEXT = '2026-11-23T12:00:00.12Z';
const T1 = T0 + 5_000;
const T1_TEXT = '2026-11-23T12:00:05.12Z';
const TTL = 600;

function identity(id = 'sess1', end = 20): SessionIdentity {
  return {
    session_id: id,
    supplier_operator_address: SUPPLIER,
    service_id: 'anvil',
    application_address: 'pokt1app',
    session_start_height: end - 9,
    session_end_height: end,
  };
}

function fresh(id = 'sess1', end = 20, at = T0_TEXT): SessionSnapshot {
  return {
    ...identity(id, end),
    state: 'active',
    relay_count: 0,
    total_compute_units: 0n,
    created_at: at,
    last_updated_at: at,
  };
}

describe('SessionStore (miner.md §3)', () => {
  const r = useRedis();
  let clock = T0;

  function store(ttl = TTL): { s: SessionStore; keys: KeyBuilder } {
    clock = T0;
    const keys = r.keys();
    return {
      s: new SessionStore({ redis: r.client, keys, log, nowMs: () => clock }, { ttl_seconds: ttl }),
      keys,
    };
  }

  async function members(keys: KeyBuilder, state: SessionState): Promise<string[]> {
    return (await r.client.smembers(keys.minerSessionStateIndex(SUPPLIER, state))).sort();
  }

  /** Every state set that holds `id`. */
  async function statesOf(keys: KeyBuilder, id: string): Promise<SessionState[]> {
    const out: SessionState[] = [];
    for (const st of SESSION_STATES) {
      if ((await r.client.sismember(keys.minerSessionStateIndex(SUPPLIER, st), id)) === 1) out.push(st);
    }
    return out;
  }

  it('ensure creates the hash with the upstream fields, indexes it as active and sets the TTL', async () => {
    const { s, keys } = store();
    expect(await s.ensure(identity())).toBe(true);
    const key = keys.minerSession(SUPPLIER, 'sess1');
    expect(await r.client.hgetall(key)).toEqual({
      session_id: 'sess1',
      supplier_operator_address: SUPPLIER,
      service_id: 'anvil',
      application_address: 'pokt1app',
      session_start_height: '11',
      session_end_height: '20',
      state: 'active',
      relay_count: '0',
      total_compute_units: '0',
      claimed_root_hash: '',
      claim_tx_hash: '',
      proof_tx_hash: '',
      last_wal_entry_id: '',
      created_at: T0_TEXT,
      last_updated_at: T0_TEXT,
    });
    expect(await r.client.smembers(keys.minerSessionsIndex(SUPPLIER))).toEqual(['sess1']);
    expect(await statesOf(keys, 'sess1')).toEqual(['active']);
    for (const k of [
      key,
      keys.minerSessionsIndex(SUPPLIER),
      keys.minerSessionStateIndex(SUPPLIER, 'active'),
    ]) {
      const ttl = await r.client.ttl(k);
      expect(ttl).toBeGreaterThan(TTL - 5);
      expect(ttl).toBeLessThanOrEqual(TTL);
    }
    expect(await s.get(SUPPLIER, 'sess1')).toEqual(fresh());
  });

  it('ensure with ttl 0 sets no expiry', async () => {
    const { s, keys } = store(0);
    await s.ensure(identity());
    expect(await r.client.ttl(keys.minerSession(SUPPLIER, 'sess1'))).toBe(-1);
    expect(await r.client.ttl(keys.minerSessionsIndex(SUPPLIER))).toBe(-1);
  });

  it('ensure of an existing session returns false and changes nothing', async () => {
    const { s } = store();
    await s.ensure(identity());
    await s.addRelays(SUPPLIER, 'sess1', 3, 30n);
    clock = T1;
    expect(await s.ensure({ ...identity(), service_id: 'other', session_end_height: 40 })).toBe(false);
    expect(await s.get(SUPPLIER, 'sess1')).toEqual({
      ...fresh(),
      relay_count: 3,
      total_compute_units: 30n,
    });
  });

  it('concurrent ensure: exactly one caller creates the session', async () => {
    const { s } = store();
    const results = await Promise.all(Array.from({ length: 25 }, () => s.ensure(identity())));
    expect(results.filter((x) => x)).toEqual([true]);
    expect(results.filter((x) => !x)).toHaveLength(24);
  });

  it.each<[string, Partial<SessionIdentity>]>([
    ['empty session id', { session_id: '' }],
    ['session id with a colon', { session_id: 'a:b' }],
    ['empty supplier', { supplier_operator_address: '' }],
    ['supplier with a brace', { supplier_operator_address: 'pokt{1' }],
    ['empty service', { service_id: '' }],
    ['empty application', { application_address: '' }],
    ['negative start', { session_start_height: -1 }],
    ['fractional end', { session_end_height: 20.5 }],
    ['end below start', { session_start_height: 21, session_end_height: 20 }],
  ])('ensure refuses %s', async (_, bad) => {
    const { s } = store();
    await expect(s.ensure({ ...identity(), ...bad })).rejects.toBeInstanceOf(InvalidInputError);
    expect(await r.client.keys(`${r.prefix}*`)).toEqual([]);
  });

  it('addRelays adds to both counters and stamps last_updated_at', async () => {
    const { s } = store();
    await s.ensure(identity());
    clock = T1;
    expect(await s.addRelays(SUPPLIER, 'sess1', 2, 200n)).toBe(true);
    expect(await s.addRelays(SUPPLIER, 'sess1', 1, 9_000_000_000_000_000_000n)).toBe(true);
    expect(await s.get(SUPPLIER, 'sess1')).toEqual({
      ...fresh(),
      relay_count: 3,
      total_compute_units: 9_000_000_000_000_000_200n,
      last_updated_at: T1_TEXT,
    });
  });

  it('concurrent addRelays lose no increment', async () => {
    const { s } = store();
    await s.ensure(identity());
    await Promise.all(Array.from({ length: 50 }, (_, i) => s.addRelays(SUPPLIER, 'sess1', 1, BigInt(i))));
    const snap = await s.get(SUPPLIER, 'sess1');
    expect([snap?.relay_count, snap?.total_compute_units]).toEqual([50, 1225n]);
  });

  it('addRelays on a missing session returns false and creates nothing', async () => {
    const { s } = store();
    expect(await s.addRelays(SUPPLIER, 'ghost', 1, 1n)).toBe(false);
    expect(await r.client.keys(`${r.prefix}*`)).toEqual([]);
  });

  it.each<[string, number, bigint]>([
    ['negative relays', -1, 0n],
    ['fractional relays', 1.5, 0n],
    ['negative compute units', 1, -1n],
    ['compute units past int64', 1, 1n << 63n],
  ])('addRelays refuses %s', async (_, relays, cu) => {
    const { s } = store();
    await s.ensure(identity());
    await expect(s.addRelays(SUPPLIER, 'sess1', relays, cu)).rejects.toBeInstanceOf(InvalidInputError);
    expect(await s.get(SUPPLIER, 'sess1')).toEqual(fresh());
  });

  it('get returns undefined for a missing session and refuses an invalid id', async () => {
    const { s } = store();
    expect(await s.get(SUPPLIER, 'nothing')).toBeUndefined();
    await expect(s.get(SUPPLIER, 'bad id')).rejects.toBeInstanceOf(InvalidInputError);
    await expect(s.get('', 'sess1')).rejects.toBeInstanceOf(InvalidInputError);
  });

  it.each<[string, string, string]>([
    ['an unknown state', 'state', 'exploded'],
    ['a non-numeric relay count', 'relay_count', 'many'],
    ['a non-numeric compute unit total', 'total_compute_units', '1e9'],
    ['a non-numeric end height', 'session_end_height', ''],
  ])('get refuses a snapshot with %s', async (_, field, value) => {
    const { s, keys } = store();
    await s.ensure(identity());
    await r.client.hset(keys.minerSession(SUPPLIER, 'sess1'), field, value);
    await expect(s.get(SUPPLIER, 'sess1')).rejects.toBeInstanceOf(SessionSnapshotCorruptError);
  });

  it('transition moves the state and the index membership and writes the fields', async () => {
    const { s, keys } = store();
    await s.ensure(identity());
    clock = T1;
    const root = new Uint8Array(48).map((_, i) => i + 200);
    expect(await s.transition(SUPPLIER, 'sess1', ['active'], 'claiming')).toBe(true);
    expect(
      await s.transition(SUPPLIER, 'sess1', ['claiming'], 'claimed', {
        claimed_root_hash: root,
        claim_tx_hash: 'ABCDEF',
      }),
    ).toBe(true);
    expect(await s.get(SUPPLIER, 'sess1')).toEqual({
      ...fresh(),
      state: 'claimed',
      claimed_root_hash: root,
      claim_tx_hash: 'ABCDEF',
      last_updated_at: T1_TEXT,
    });
    expect(await statesOf(keys, 'sess1')).toEqual(['claimed']);
    expect(await r.client.smembers(keys.minerSessionsIndex(SUPPLIER))).toEqual(['sess1']);
    const ttl = await r.client.ttl(keys.minerSessionStateIndex(SUPPLIER, 'claimed'));
    expect(ttl).toBeGreaterThan(TTL - 5);
  });

  it('transition from a state not accepted returns false and changes nothing', async () => {
    const { s, keys } = store();
    await s.ensure(identity());
    clock = T1;
    expect(
      await s.transition(SUPPLIER, 'sess1', ['claiming', 'claimed'], 'proving', { proof_tx_hash: 'X' }),
    ).toBe(false);
    expect(await s.get(SUPPLIER, 'sess1')).toEqual(fresh());
    expect(await statesOf(keys, 'sess1')).toEqual(['active']);
  });

  it('transition of a missing session returns false and creates nothing', async () => {
    const { s } = store();
    expect(await s.transition(SUPPLIER, 'ghost', ['active'], 'claiming')).toBe(false);
    expect(await r.client.keys(`${r.prefix}*`)).toEqual([]);
  });

  it('transition accepts any of several states and may stay in the same state', async () => {
    const { s, keys } = store();
    await s.ensure(identity());
    expect(
      await s.transition(SUPPLIER, 'sess1', ['proving', 'active'], 'active', { claim_tx_hash: 'H' }),
    ).toBe(true);
    expect(await statesOf(keys, 'sess1')).toEqual(['active']);
    expect((await s.get(SUPPLIER, 'sess1'))?.claim_tx_hash).toBe('H');
  });

  it('racing transitions from one state: exactly one wins and the id sits in exactly its state set', async () => {
    const { s, keys } = store();
    await s.ensure(identity());
    const targets: SessionState[] = ['claiming', 'claim_window_closed', 'claim_skipped', 'claim_tx_error'];
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => s.transition(SUPPLIER, 'sess1', ['active'], targets[i % 4]!)),
    );
    expect(results.filter((x) => x)).toHaveLength(1);
    const winner = targets[results.indexOf(true) % 4]!;
    expect(await statesOf(keys, 'sess1')).toEqual([winner]);
    expect((await s.get(SUPPLIER, 'sess1'))?.state).toBe(winner);
  });

  it.each<[string, readonly SessionState[], string, SessionFields]>([
    ['no accepted states', [], 'claiming', {}],
    ['an unknown accepted state', ['actve' as SessionState], 'claiming', {}],
    ['an unknown target state', ['active'], 'done', {}],
    ['an empty claimed root', ['active'], 'claiming', { claimed_root_hash: new Uint8Array(0) }],
    ['a negative settlement height', ['active'], 'claiming', { settlement_height: -3 }],
    ['an empty tx hash', ['active'], 'claiming', { claim_tx_hash: '' }],
    ['a counter field', ['active'], 'claiming', { relay_count: 5 } as SessionFields],
    ['the state field', ['active'], 'claiming', { state: 'proved' } as SessionFields],
  ])('transition refuses %s', async (_, from, to, fields) => {
    const { s } = store();
    await s.ensure(identity());
    await expect(s.transition(SUPPLIER, 'sess1', from, to as SessionState, fields)).rejects.toBeInstanceOf(
      InvalidInputError,
    );
    expect(await s.get(SUPPLIER, 'sess1')).toEqual(fresh());
  });

  it('update writes tx and settlement fields without touching state or counters', async () => {
    const { s, keys } = store();
    await s.ensure(identity());
    await s.addRelays(SUPPLIER, 'sess1', 4, 40n);
    await s.transition(SUPPLIER, 'sess1', ['active'], 'proved');
    clock = T1;
    expect(
      await s.update(SUPPLIER, 'sess1', {
        proof_tx_hash: 'P1',
        settlement_outcome: 'settled',
        settlement_height: 77,
        settlement_tx_hash: 'S1',
      }),
    ).toBe(true);
    expect(await s.get(SUPPLIER, 'sess1')).toEqual({
      ...fresh(),
      state: 'proved',
      relay_count: 4,
      total_compute_units: 40n,
      proof_tx_hash: 'P1',
      settlement_outcome: 'settled',
      settlement_height: 77,
      settlement_tx_hash: 'S1',
      last_updated_at: T1_TEXT,
    });
    expect(await statesOf(keys, 'sess1')).toEqual(['proved']);
  });

  it('update of a missing session returns false and creates nothing; bad fields are refused', async () => {
    const { s } = store();
    expect(await s.update(SUPPLIER, 'ghost', { claim_tx_hash: 'X' })).toBe(false);
    expect(await r.client.keys(`${r.prefix}*`)).toEqual([]);
    await s.ensure(identity());
    await expect(s.update(SUPPLIER, 'sess1', { settlement_height: 1.5 })).rejects.toBeInstanceOf(
      InvalidInputError,
    );
    await expect(s.update(SUPPLIER, 'sess1', { state: 'proved' } as SessionFields)).rejects.toBeInstanceOf(
      InvalidInputError,
    );
    expect(await s.get(SUPPLIER, 'sess1')).toEqual(fresh());
  });

  it('list returns snapshots by end height, filters by state and drops ids whose hash expired', async () => {
    const { s, keys } = store();
    await s.ensure(identity('c', 30));
    await s.ensure(identity('a', 20));
    await s.ensure(identity('b', 20));
    await s.ensure(identity('gone', 10));
    await s.transition(SUPPLIER, 'b', ['active'], 'claiming');
    await r.client.del(keys.minerSession(SUPPLIER, 'gone'));

    expect((await s.list(SUPPLIER)).map((x) => x.session_id)).toEqual(['a', 'b', 'c']);
    expect(await r.client.smembers(keys.minerSessionsIndex(SUPPLIER))).toEqual(
      expect.arrayContaining(['a', 'b', 'c']),
    );
    expect(await r.client.scard(keys.minerSessionsIndex(SUPPLIER))).toBe(3);

    expect(await members(keys, 'active')).toEqual(['a', 'c', 'gone']);
    expect(await s.list(SUPPLIER, ['claiming'])).toEqual([{ ...fresh('b', 20), state: 'claiming' }]);
    expect((await s.list(SUPPLIER, ['active', 'claiming'])).map((x) => x.session_id)).toEqual([
      'a',
      'b',
      'c',
    ]);
    expect(await members(keys, 'active')).toEqual(['a', 'c']);
    expect((await s.list(SUPPLIER, ['active'])).map((x) => x.session_id)).toEqual(['a', 'c']);
    expect(await s.list(SUPPLIER, [])).toEqual([]);
    expect(await s.list('pokt1nobody')).toEqual([]);
    await expect(s.list(SUPPLIER, ['nope' as SessionState])).rejects.toBeInstanceOf(InvalidInputError);
  });

  it('list skips an unreadable snapshot and returns the others', async () => {
    const { s, keys } = store();
    await s.ensure(identity('a', 20));
    await s.ensure(identity('b', 21));
    await r.client.hset(keys.minerSession(SUPPLIER, 'a'), 'state', 'bogus');
    expect(await s.list(SUPPLIER)).toEqual([fresh('b', 21)]);
  });

  it('delete removes the hash and the id from the index and every state set', async () => {
    const { s, keys } = store();
    await s.ensure(identity('a'));
    await s.ensure(identity('b'));
    await s.transition(SUPPLIER, 'a', ['active'], 'claim_skipped');
    await r.client.sadd(keys.minerSessionStateIndex(SUPPLIER, 'proving'), 'a');
    await s.delete(SUPPLIER, 'a');
    expect(await s.get(SUPPLIER, 'a')).toBeUndefined();
    expect(await statesOf(keys, 'a')).toEqual([]);
    expect(await r.client.smembers(keys.minerSessionsIndex(SUPPLIER))).toEqual(['b']);
    expect(await s.list(SUPPLIER)).toEqual([fresh('b')]);
    await s.delete(SUPPLIER, 'never');
  });

  it('terminal states are exactly the eight of the §3 table', () => {
    expect([...TERMINAL_STATES].sort()).toEqual(
      [
        'claim_missing',
        'claim_skipped',
        'claim_tx_error',
        'claim_window_closed',
        'probabilistic_proved',
        'proof_tx_error',
        'proof_window_closed',
        'proved',
      ].sort(),
    );
  });

  it('refuses a negative TTL', () => {
    expect(() => new SessionStore({ redis: r.client, keys: r.keys(), log }, { ttl_seconds: -1 })).toThrow(
      InvalidInputError,
    );
  });
});

describe('formatRfc3339Nano', () => {
  it.each<[number, string]>([
    [Date.UTC(2026, 0, 2, 3, 4, 5, 0), '2026-01-02T03:04:05Z'],
    [Date.UTC(2026, 0, 2, 3, 4, 5, 100), '2026-01-02T03:04:05.1Z'],
    [Date.UTC(2026, 0, 2, 3, 4, 5, 7), '2026-01-02T03:04:05.007Z'],
  ])('%i → %s', (ms, text) => {
    expect(formatRfc3339Nano(ms)).toBe(text);
  });
});
