-- Lease release: deletes the lease only if the caller holds it (compare-and-delete), so a
-- holder whose lease already passed to someone else cannot remove the new holder's key.
--
-- KEYS[1]  lease key   {p}:miner:claim:{supplier} or {p}:miner:global_leader  string, holder id
-- ARGV[1]  holder id   instance id of the caller (non-empty)
--
-- Returns:
--   1   released (key deleted)
--   0   the caller did not hold it (absent or another holder); nothing changed
--  -2   bad arguments
local id = ARGV[1]
if id == nil or id == '' then
  return -2
end
if redis.call('GET', KEYS[1]) == id then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
