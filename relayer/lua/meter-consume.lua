-- Relay meter check-and-consume for one (session, supplier) budget (relayer.md §5.3), atomic.
--
-- KEYS[1]  meta key      {p}:meter:{session_id}:{supplier}:meta      string, JSON SessionMeterMeta
-- KEYS[2]  consumed key  {p}:meter:{session_id}:{supplier}:consumed  string, integer uPOKT
-- KEYS[3]  active set    {p}:meter:active_sessions                   set of "{session_id}|{supplier}"
-- ARGV[1]  cost          uPOKT this relay consumes (decimal integer >= 0)
-- ARGV[2]  meta JSON     the caller's freshly computed meta (its max_stake_upokt is the budget);
--                        written when the meta key is absent (expired or never created)
-- ARGV[3]  ttl seconds   TTL of the three keys (relay_meter.cache_ttl), > 0
-- ARGV[4]  member        "{session_id}|{supplier}" added to the active set on creation
-- ARGV[5]  recompute     "1": the caller's app stake or service factor differ from the stored
--                        meta's created_with_* snapshot → overwrite the meta in place (KEEPTTL)
--
-- Returns {status, consumed, max}:
--   status  1  allowed; consumed = counter after adding cost
--   status -1  refused, budget exhausted; consumed = counter unchanged (cost was NOT added)
--   status -2  refused, bad arguments (cost/ttl not a non-negative integer, meta JSON unusable)
--   max = the budget in force (stored meta's max_stake_upokt, or ARGV[2]'s when created/recomputed)
-- Amounts are compared as Lua doubles: exact up to 2^53 uPOKT (9e9 POKT), above total supply.
local cost = tonumber(ARGV[1])
local ttl = tonumber(ARGV[3])
if cost == nil or cost < 0 or cost % 1 ~= 0 or ttl == nil or ttl <= 0 or ttl % 1 ~= 0 then
  return {-2, 0, 0}
end

local ok, fresh = pcall(cjson.decode, ARGV[2])
if not ok or type(fresh) ~= 'table' or type(fresh['max_stake_upokt']) ~= 'number' then
  return {-2, 0, 0}
end

local max
local stored = redis.call('GET', KEYS[1])
if not stored then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ttl)
  -- A counter that outlived its meta keeps its value; a new one starts at 0. Either way it gets the TTL.
  redis.call('SET', KEYS[2], '0', 'EX', ttl, 'NX')
  redis.call('EXPIRE', KEYS[2], ttl)
  redis.call('SADD', KEYS[3], ARGV[4])
  redis.call('EXPIRE', KEYS[3], ttl)
  max = fresh['max_stake_upokt']
elseif ARGV[5] == '1' then
  redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
  max = fresh['max_stake_upokt']
else
  local ok2, meta = pcall(cjson.decode, stored)
  if ok2 and type(meta) == 'table' and type(meta['max_stake_upokt']) == 'number' then
    max = meta['max_stake_upokt']
  else
    -- A corrupt stored meta is replaced by the caller's, keeping its TTL.
    redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
    max = fresh['max_stake_upokt']
  end
end

local consumed = tonumber(redis.call('GET', KEYS[2]) or '0')
if consumed + cost > max then
  return {-1, consumed, max}
end
consumed = redis.call('INCRBY', KEYS[2], cost)
if redis.call('TTL', KEYS[2]) < 0 then
  redis.call('EXPIRE', KEYS[2], ttl)
end
return {1, consumed, max}
