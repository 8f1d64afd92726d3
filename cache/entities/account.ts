/**
 * Account public keys: `ha:cache:account:{address}`, the proto-encoded secp256k1 PubKey, L1 30 min,
 * no L2 TTL (keys never change). An account without a revealed key is "not found".
 */
import { PubKey } from 'cosmjs-types/cosmos/crypto/secp256k1/keys';
import type { ChainQueryClient } from '../../chain/index.js';
import { jsonInvalidation } from '../invalidation.js';
import type { CacheEntity } from '../tiered-cache.js';
import { MINUTE_MS, type EntityTtlConfig } from './common.js';

export function accountPublicKeyEntity(
  chain: Pick<ChainQueryClient, 'getAccount'>,
  ttl: EntityTtlConfig = {},
): CacheEntity<string, Uint8Array> {
  return {
    type: 'account',
    id: (address) => address,
    parseId: (id) => id,
    l2Key: (keys, address) => keys.accountKey(address),
    lockKey: (keys, address) => keys.accountLockKey(address),
    l2Pattern: (keys) => keys.cachePattern('account'),
    encode: (key) => PubKey.encode({ key }).finish(),
    decode: (bytes) => {
      const key = PubKey.decode(bytes).key;
      if (key.length !== 33) throw new TypeError(`cached public key has ${key.length} bytes, want 33`);
      return key;
    },
    load: async (address) => (await chain.getAccount(address)).pubKey,
    l1TtlMs: ttl.l1_ttl_ms ?? 30 * MINUTE_MS,
    l2TtlMs: () => ttl.l2_ttl_ms,
    invalidation: jsonInvalidation('account', 'address'),
  };
}
