-- Relay meter revert: gives back the cost of a relay that was consumed but not served
-- (e.g. the backend failed in eager mode). Never takes the counter below zero.
--
-- KEYS[1]  consumed key  {p}:meter:{session_id}:{supplier}:consumed  string, integer uPOKT
-- ARGV[1]  cost          uPOKT to give back (decimal integer >= 0)
--
-- Returns {status, consumed}:
--   status  1  reverted; consumed = counter after the revert (TTL kept)
--   status -3  no counter (expired or cleaned up): nothing to revert; consumed = 0
--   status -2  bad arguments
local cost = tonumber(ARGV[1])
if cost == nil or cost < 0 or cost % 1 ~= 0 then
  return {-2, 0}
end
local current = redis.call('GET', KEYS[1])
if not current then
  return {-3, 0}
end
local n = tonumber(current)
if cost > n then
  cost = n
end
return {1, redis.call('DECRBY', KEYS[1], cost)}
