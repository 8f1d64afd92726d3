-- Lease renew: extends the lease only while the caller still holds it.
--
-- KEYS[1]  lease key   {p}:miner:claim:{supplier} or {p}:miner:global_leader  string, holder id
-- ARGV[1]  holder id   instance id of the caller (non-empty)
-- ARGV[2]  ttl_ms      new lifetime in milliseconds (integer >= 1)
--
-- Returns:
--   1   renewed; the TTL is ttl_ms from now
--   0   the lease expired or another holder has it: the caller lost it; nothing changed
--  -2   bad arguments
local id = ARGV[1]
local ttl = tonumber(ARGV[2])
if id == nil or id == '' or ttl == nil or ttl < 1 or ttl % 1 ~= 0 then
  return -2
end
if redis.call('GET', KEYS[1]) == id then
  redis.call('PEXPIRE', KEYS[1], ttl)
  return 1
end
return 0
