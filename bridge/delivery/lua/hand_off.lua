-- A lane's taker stops taking before the lane is empty (it ran long enough, its worker is
-- stopping, or it failed): when it is the taker (or none is) and items wait, ``new job id``
-- becomes the taker and 1 is returned (the caller queues that job); otherwise the mark is
-- given up if it is this job's and 0 is returned.
-- KEYS: pending set, the lane's taker mark
-- ARGV: job id, new job id, seconds the mark lives
local mark = redis.call('GET', KEYS[2])
if mark and mark ~= ARGV[1] then
  return 0
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
  return 1
end
if mark then
  redis.call('DEL', KEYS[2])
end
return 0
