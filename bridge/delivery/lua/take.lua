-- Move a lane's pending items to a job's taken set. A job that takes something comes back
-- for more once it has delivered it, so it becomes the lane's taker (the mark) when no
-- other job is; a job that finds nothing stops taking, and gives up the mark if it is its
-- own, so the next change queues a new job. A job run again after its worker died also
-- gets back what it had taken and not finished. The request ids of the lane's changes go
-- with them.
-- KEYS: pending set, the lane's taker mark, the job's taken set, the lane's origins
-- ARGV: seconds the taken set lives, job id, seconds the mark lives
-- Returns {taken items, flat origins (kind:id, request id, ...)}
local mark = redis.call('GET', KEYS[2])
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('SUNIONSTORE', KEYS[3], KEYS[3], KEYS[1])
  redis.call('DEL', KEYS[1])
  if not mark or mark == ARGV[2] then
    redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
  end
elseif mark == ARGV[2] then
  redis.call('DEL', KEYS[2])
end
redis.call('EXPIRE', KEYS[3], ARGV[1])
local origins = redis.call('HGETALL', KEYS[4])
redis.call('DEL', KEYS[4])
return {redis.call('SMEMBERS', KEYS[3]), origins}
