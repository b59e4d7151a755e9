-- Close one delivery in one round trip: save what the target now holds, log the attempt,
-- count it, clear its dead letter and the breaker's failure count on success, and release
-- the delivery lock if it is still ours.
-- KEYS: lock, state, log, stats, dead, breaker
-- ARGV: token, item, state JSON (or ''), log entry JSON, counter, log length, success (1|0)
-- Returns 1 when this success closed an open breaker, else 0.
local reopened = 0
if ARGV[3] ~= '' then redis.call('HSET', KEYS[2], ARGV[2], ARGV[3]) end
redis.call('LPUSH', KEYS[3], ARGV[4])
redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[6]) - 1)
redis.call('HINCRBY', KEYS[4], ARGV[5], 1)
if ARGV[7] == '1' then
  redis.call('HDEL', KEYS[5], ARGV[2])
  -- a breaker with no hash is closed with no failures: most successes change nothing, and
  -- writing nothing then keeps them out of the AOF and the replicas' stream
  local breaker = redis.call('HMGET', KEYS[6], 'state', 'failures')
  if breaker[1] == 'open' then reopened = 1 end
  if (breaker[1] and breaker[1] ~= 'closed') or (breaker[2] and breaker[2] ~= '0') then
    redis.call('HSET', KEYS[6], 'failures', 0, 'state', 'closed')
  end
end
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return reopened
