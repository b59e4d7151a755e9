-- Add items to a lane's pending set, with the request ids that changed them. When no job
-- will take them, record ``new job id`` as the lane's taker and return 1 (the caller
-- queues a job of that id). Return 0 when the recorded taker will take them: it is queued
-- and has not started, or it runs and nothing was left waiting for it (it comes back for
-- more when it has delivered what it took; see take.lua). A running taker that already
-- has items waiting is busy: a new job is queued beside it, up to the lane's concurrency.
-- KEYS: pending set, the lane's taker mark, the lane's origins hash
-- ARGV: RQ's job hash prefix, new job id, seconds the mark and origins live,
--       number of origin pairs n, n x (kind:id, request id), item, item, ...
local n = tonumber(ARGV[4])
local first_item = 5 + 2 * n
if n > 0 then
  redis.call('HSET', KEYS[3], unpack(ARGV, 5, first_item - 1))
  redis.call('EXPIRE', KEYS[3], ARGV[3])
end
local waiting = redis.call('SCARD', KEYS[1])
redis.call('SADD', KEYS[1], unpack(ARGV, first_item))
local id = redis.call('GET', KEYS[2])
if id then
  local status = redis.call('HGET', ARGV[1] .. id, 'status')
  if status == 'queued' or status == 'rate_limited' or status == 'scheduled' then
    return 0
  end
  if status == 'started' and waiting == 0 then
    return 0
  end
end
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
return 1
