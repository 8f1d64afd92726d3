-- Releases a cache fill lock only when this process still owns it (upstream deletes the lock
-- unconditionally, so a loser could delete the winner's lock; cache-and-redis.md §3).
--
-- KEYS[1]  the lock key (`{base}:cache:lock:…`)
-- ARGV[1]  the owner token written with SET NX PX
--
-- Returns 1 when the lock was deleted, 0 when it is gone or held by another owner.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
