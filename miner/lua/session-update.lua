-- Writes non-state, non-counter fields of an existing session snapshot.
-- KEYS[1] snapshot hash. ARGV[1] ttl seconds, ARGV[2..] field/value pairs (last_updated_at included).
-- Returns 1 when the snapshot exists, 0 when it does not (nothing written).
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
local fields = {}
for i = 2, #ARGV do
  fields[#fields + 1] = ARGV[i]
end
redis.call('HSET', KEYS[1], unpack(fields))
local ttl = tonumber(ARGV[1])
if ttl > 0 then
  redis.call('EXPIRE', KEYS[1], ttl)
end
return 1
