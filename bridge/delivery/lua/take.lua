-- Move up to ``limit`` of a lane's pending items to a job's taken set. A job that takes
-- something comes back for more once it has delivered it, so it becomes the lane's taker
-- (the mark) when no other job is; a job that finds nothing stops taking, and gives up
-- the mark if it is its own, so the next change queues a new job. A job run again after
-- its worker died also gets back what it had taken and not finished. The request ids of
-- the changes it holds go with them.
-- A taker that finds nothing may instead keep the mark a little longer (``linger``), so
-- that the next change waits for it rather than queueing a job; it does so only when no
-- job waits in its RQ queue, so a lane it holds delays no other.
-- The targets' configuration version is read too, when asked: the job needs it next, to
-- know whether its target changed.
-- KEYS: pending set, the lane's taker mark, the job's taken set, the lane's origins,
--       the job's RQ queue (a list of job ids), the targets' version
-- ARGV: seconds the taken set lives, job id, seconds the mark lives, limit, linger (1|0),
--       read the version (1|0)
-- Returns {taken items, flat origins (kind:id, request id, ...), 1 if the mark is kept,
--          the targets' version (nil when not read, or none)}
local mark = redis.call('GET', KEYS[2])
local waiting = redis.call('SCARD', KEYS[1])
local limit = tonumber(ARGV[4])
local kept = 0
if waiting > 0 then
  if waiting <= limit then
    redis.call('SUNIONSTORE', KEYS[3], KEYS[3], KEYS[1])
    redis.call('DEL', KEYS[1])
  else
    redis.call('SADD', KEYS[3], unpack(redis.call('SPOP', KEYS[1], limit)))
  end
  if not mark or mark == ARGV[2] then
    redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
  end
elseif mark == ARGV[2] then
  if ARGV[5] == '1' and redis.call('LLEN', KEYS[5]) == 0 then
    kept = 1
  else
    redis.call('DEL', KEYS[2])
  end
end
redis.call('EXPIRE', KEYS[3], ARGV[1])
local members = redis.call('SMEMBERS', KEYS[3])
local origins = {}
for first = 1, #members, 1000 do
  local chunk = {unpack(members, first, math.min(first + 999, #members))}
  local ids = redis.call('HMGET', KEYS[4], unpack(chunk))
  for i, member in ipairs(chunk) do
    if ids[i] then
      origins[#origins + 1] = member
      origins[#origins + 1] = ids[i]
    end
  end
  redis.call('HDEL', KEYS[4], unpack(chunk))
end
local version = false
if ARGV[6] == '1' then version = redis.call('GET', KEYS[6]) end
return {members, origins, kept, version}
