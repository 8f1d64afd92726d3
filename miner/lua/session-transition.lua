-- Compare-and-set of a session state: moves the id from its current state set to the new one and
-- writes the given fields, only when the current state is one of the accepted states.
-- KEYS[1] snapshot hash, KEYS[2] index set, KEYS[3] state set of the new state,
-- KEYS[3 + i] state set of the i-th accepted state.
-- ARGV[1] new state, ARGV[2] session id, ARGV[3] ttl seconds, ARGV[4] number n of accepted states,
-- ARGV[5 .. 4 + n] accepted states (same order as their KEYS), then field/value pairs
-- (last_updated_at included).
-- Returns 1 when the state moved, 0 when the snapshot is missing or its state is not accepted.
local current = redis.call('HGET', KEYS[1], 'state')
if not current then
  return 0
end
local n = tonumber(ARGV[4])
local from_key = nil
for i = 1, n do
  if ARGV[4 + i] == current then
    from_key = KEYS[3 + i]
    break
  end
end
if from_key == nil then
  return 0
end
local fields = { 'state', ARGV[1] }
for i = 5 + n, #ARGV do
  fields[#fields + 1] = ARGV[i]
end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('SREM', from_key, ARGV[2])
redis.call('SADD', KEYS[3], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[2])
local ttl = tonumber(ARGV[3])
if ttl > 0 then
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('EXPIRE', KEYS[2], ttl)
  redis.call('EXPIRE', KEYS[3], ttl)
end
return 1
