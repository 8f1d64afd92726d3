-- Lease acquire: takes a free lease, or refreshes one this holder already has (for example after
-- its renew call failed on a connection error while the key survived).
--
-- KEYS[1]  lease key   {p}:miner:claim:{supplier} or {p}:miner:global_leader  string, holder id
-- ARGV[1]  holder id   instance id of the caller (non-empty)
-- ARGV[2]  ttl_ms      lease lifetime in milliseconds (integer >= 1)
--
-- Returns:
--   1   the caller holds the lease now; its TTL is ttl_ms
--   0   another holder has it; nothing changed
--  -2   bad arguments
local id = ARGV[1]
local ttl = tonumber(ARGV[2])
if id == nil or id == '' or ttl == nil or ttl < 1 or ttl % 1 ~= 0 then
  return -2
end
if redis.call('SET', KEYS[1], id, 'NX', 'PX', ttl) then
  return 1
end
if redis.call('GET', KEYS[1]) == id then
  redis.call('PEXPIRE', KEYS[1], ttl)
  return 1
end
return 0
