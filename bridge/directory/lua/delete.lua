-- Delete one SCIM resource with its indexes and memberships, and announce it: atomically.
-- ARGV: prefix, kind, id, expect (version or ''), now, stream_maxlen,
--       request id (or ''): carried in every stream entry it appends as 'req'
-- Returns {"ok", version} or {"err", code, detail}.
local p, kind, id, expect, now, maxlen = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local request_id = ARGV[7] or ''
local key = p .. ':' .. kind .. ':' .. id
local raw = redis.call('GET', key)
if not raw then return {'err', 'notfound', id} end
local nl = string.find(raw, '\n', 1, true)
local header = cjson.decode(string.sub(raw, 1, nl - 1))
if expect ~= '' and tonumber(expect) ~= header.v then
  return {'err', 'precondition', tostring(header.v)}
end

local function announce(k, rid, op, v, removed)
  local fields = {'kind', k, 'id', rid, 'op', op, 'v', v}
  if removed then fields[#fields + 1] = 'removed'; fields[#fields + 1] = removed end
  if request_id ~= '' then fields[#fields + 1] = 'req'; fields[#fields + 1] = request_id end
  redis.call('XADD', p .. ':changes', 'MAXLEN', '~', maxlen, '*', unpack(fields))
end

for attr, value in pairs(header.ix.u or {}) do
  redis.call('HDEL', p .. ':idx:' .. kind .. ':' .. attr, value)
end
for attr, values in pairs(header.ix.m or {}) do
  for _, v in ipairs(values) do
    redis.call('SREM', p .. ':idx:' .. kind .. ':' .. attr .. ':' .. v, id)
  end
end

-- leave every group this resource belongs to; each such group changes version
local parents_key = key .. ':groups'
for _, gid in ipairs(redis.call('SMEMBERS', parents_key)) do
  local gkey = p .. ':group:' .. gid
  if redis.call('HDEL', gkey .. ':members', id) == 1 then
    local graw = redis.call('GET', gkey)
    if graw then
      local gnl = string.find(graw, '\n', 1, true)
      local gh = cjson.decode(string.sub(graw, 1, gnl - 1))
      gh.v = gh.v + 1
      gh.m = now
      redis.call('SET', gkey, cjson.encode(gh) .. '\n' .. string.sub(graw, gnl + 1))
      announce('group', gid, 'updated', gh.v, cjson.encode({id}))
    end
  end
end
redis.call('DEL', parents_key)

-- a deleted group releases its members, and says which (their access may depend on it)
local released = nil
if kind == 'group' then
  local mkey = key .. ':members'
  local mids = redis.call('HKEYS', mkey)
  for _, mid in ipairs(mids) do
    redis.call('SREM', p .. ':user:' .. mid .. ':groups', id)
    redis.call('SREM', p .. ':group:' .. mid .. ':groups', id)
  end
  redis.call('DEL', mkey)
  if #mids > 0 then released = cjson.encode(mids) end
end

redis.call('DEL', key)
redis.call('ZREM', p .. ':' .. kind .. 's', id)
announce(kind, id, 'deleted', header.v + 1, released)
return {'ok', header.v + 1}
