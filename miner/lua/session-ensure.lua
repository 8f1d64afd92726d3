-- Creates a miner session snapshot hash if it does not exist yet (miner.md §3).
-- KEYS[1] snapshot hash, KEYS[2] index set of the supplier, KEYS[3] state set of `active`.
-- ARGV[1] ttl seconds (0 = none), ARGV[2] session id, ARGV[3..] field/value pairs of the hash.
-- Returns 1 when this call created the snapshot, 0 when it existed.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
local ttl = tonumber(ARGV[1])
local fields = {}
for i = 3, #ARGV do
  fields[#fields + 1] = ARGV[i]
end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[2])
if ttl > 0 then
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('EXPIRE', KEYS[2], ttl)
  redis.call('EXPIRE', KEYS[3], ttl)
end
return 1
