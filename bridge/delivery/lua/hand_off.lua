-- A lane's taker stops taking before the lane is empty (it ran long enough, its worker is
-- stopping, or it failed): unless another live job is the lane's taker, when items wait
-- ``new job id`` becomes the taker and 1 is returned (the caller queues that job);
-- otherwise the mark is given up if it is this job's and 0 is returned. A job that will
-- not run again first gives back what it had taken.
-- KEYS: pending set, the lane's taker mark, the job's taken set
-- ARGV: job id, new job id, seconds the mark lives, RQ's job hash prefix, give back (1/0)
if ARGV[5] == '1' and redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('SUNIONSTORE', KEYS[1], KEYS[1], KEYS[3])
  redis.call('DEL', KEYS[3])
end
local mark = redis.call('GET', KEYS[2])
if mark and mark ~= ARGV[1] then
  local status = redis.call('HGET', ARGV[4] .. mark, 'status')
  if status == 'queued' or status == 'rate_limited' or status == 'scheduled'
      or status == 'started' then
    return 0
  end
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
  return 1
end
if mark == ARGV[1] then
  redis.call('DEL', KEYS[2])
end
return 0
