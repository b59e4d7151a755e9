-- Take an item's delivery lock and read what its delivery needs, in one call (a pipeline
-- of the same reads costs the client a command each).
-- KEYS: lock, state, record, derived (a user's groups: a set; a group's members: a hash), breaker
-- ARGV: token, item, lock seconds, kind (user or group)
-- Returns: 1 when the lock is the job's (taken now, or left by its own earlier run) else 0,
-- the item's state JSON, the record, the derived set (a hash as its fields and values in
-- turn), the breaker's state; a missing value is nil.
local locked = 0
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[3]) then
  locked = 1
elseif redis.call('GET', KEYS[1]) == ARGV[1] then
  locked = 1
end
local state = redis.call('HGET', KEYS[2], ARGV[2])
local record = redis.call('GET', KEYS[3])
local derived
if ARGV[4] == 'user' then
  derived = redis.call('SMEMBERS', KEYS[4])
else
  derived = redis.call('HGETALL', KEYS[4])
end
return {locked, state, record, derived, redis.call('HGET', KEYS[5], 'state')}
