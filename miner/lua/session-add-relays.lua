-- Adds to the counters of an existing session snapshot; the only writer of the counters.
-- KEYS[1] snapshot hash.
-- ARGV[1] relays, ARGV[2] compute units (decimal), ARGV[3] last_updated_at, ARGV[4] ttl seconds.
-- Returns 1 when the snapshot exists, 0 when it does not (nothing written).
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('HINCRBY', KEYS[1], 'relay_count', ARGV[1])
redis.call('HINCRBY', KEYS[1], 'total_compute_units', ARGV[2])
redis.call('HSET', KEYS[1], 'last_updated_at', ARGV[3])
local ttl = tonumber(ARGV[4])
if ttl > 0 then
  redis.call('EXPIRE', KEYS[1], ttl)
end
return 1
