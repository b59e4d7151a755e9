-- Find records through an index and return them with their derived sets: one round trip.
-- ARGV: prefix, kind, how ("id" | "unique" | "multi"), attr, value, groups ("1"|"0"), members ("1"|"0")
-- Returns a flat list: id, record[, groups][, members] for each record that exists.
local p, kind, how, attr, value = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local ids
if how == 'id' then
  ids = {value}
elseif how == 'unique' then
  local id = redis.call('HGET', p .. ':idx:' .. kind .. ':' .. attr, value)
  ids = id and {id} or {}
else
  ids = redis.call('SMEMBERS', p .. ':idx:' .. kind .. ':' .. attr .. ':' .. value)
  table.sort(ids)
end
local out = {}
for _, id in ipairs(ids) do
  local key = p .. ':' .. kind .. ':' .. id
  local raw = redis.call('GET', key)
  if raw then
    out[#out + 1] = id
    out[#out + 1] = raw
    if ARGV[6] == '1' then out[#out + 1] = redis.call('SMEMBERS', key .. ':groups') end
    if ARGV[7] == '1' then out[#out + 1] = redis.call('HGETALL', key .. ':members') end
  end
end
return out
