-- Records relay hashes in the per-session dedup set and tells which ones were new.
-- KEYS[1] dedup set. ARGV[1] ttl seconds (0 = none), ARGV[2..] raw relay hashes.
-- Returns one integer per hash, in order: 1 added now, 0 already present.
local added = {}
for i = 2, #ARGV do
  added[#added + 1] = redis.call('SADD', KEYS[1], ARGV[i])
end
local ttl = tonumber(ARGV[1])
if ttl > 0 then
  redis.call('EXPIRE', KEYS[1], ttl)
end
return added
