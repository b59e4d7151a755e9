-- Move a lane's pending items to a job's taken set and, when it is this job, clear the
-- lane's record of the queued job (a change after this queues a new one); a job run again
-- after its worker died also gets back what it had taken and not finished. The request ids
-- of the lane's changes go with them.
-- KEYS: pending set, the lane's queued-job mark, the job's taken set, the lane's origins
-- ARGV: seconds the taken set lives, job id
-- Returns {taken items, flat origins (kind:id, request id, ...)}
if redis.call('GET', KEYS[2]) == ARGV[2] then redis.call('DEL', KEYS[2]) end
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('SUNIONSTORE', KEYS[3], KEYS[3], KEYS[1])
  redis.call('DEL', KEYS[1])
end
redis.call('EXPIRE', KEYS[3], ARGV[1])
local origins = redis.call('HGETALL', KEYS[4])
redis.call('DEL', KEYS[4])
return {redis.call('SMEMBERS', KEYS[3]), origins}
