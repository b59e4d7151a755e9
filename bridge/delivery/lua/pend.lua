-- Add items to a lane's pending set; 1 when no job waits to take them (the caller queues
-- one and records it), 0 when the recorded job has not started yet (it will take them).
-- KEYS: pending set, the lane's queued-job mark
-- ARGV: RQ's job hash prefix, item, item, ...
redis.call('SADD', KEYS[1], unpack(ARGV, 2))
local id = redis.call('GET', KEYS[2])
if id then
  local status = redis.call('HGET', ARGV[1] .. id, 'status')
  if status == 'queued' or status == 'rate_limited' or status == 'scheduled' then
    return 0
  end
end
return 1
