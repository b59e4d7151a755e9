-- Create or update one SCIM resource, its indexes and memberships, and announce the
-- change on the changes stream: all in one atomic script, one round trip.
--
-- ARGV[1]: JSON request
--   prefix, kind ("user"|"group"), id, mode ("create"|"update"),
--   expect (version the record must have, or false), now (ISO-8601),
--   doc (JSON text, or false to keep the stored one),
--   unique {attr: value|false}  (only with doc), multi {attr: [values]} (only with doc),
--   members {add = {id: extras-json or ''}, remove = [ids], replace = bool}  (groups only)
--   A member is stored as  member-id -> '<user|group>|<extras>'.
--   stream_maxlen, deprovision (true when the write disables the resource: routed first)
--   request_id (the SCIM request's id, or false): carried in the stream entry as 'req'
-- Returns {"ok", version, created, lastModified, changed(0|1)} or {"err", code, detail}.
local req = cjson.decode(ARGV[1])
local p, kind, id = req.prefix, req.kind, req.id
local key = p .. ':' .. kind .. ':' .. id
local raw = redis.call('GET', key)
local header, doc

if raw then
  if req.mode == 'create' then return {'err', 'conflict', 'id exists'} end
  local nl = string.find(raw, '\n', 1, true)
  header = cjson.decode(string.sub(raw, 1, nl - 1))
  doc = string.sub(raw, nl + 1)
else
  if req.mode ~= 'create' then return {'err', 'notfound', id} end
  header = {v = 0, c = req.now, ix = {u = {}, m = {}}}
end
if req.expect and tonumber(req.expect) ~= header.v then
  return {'err', 'precondition', tostring(header.v)}
end

-- every check comes before the first write: a script that fails half-way is not undone
local m = req.members
local kinds, adding = {}, {}
local CHUNK = 1000  -- ids per command: Lua's unpack takes about 8,000 values at most
if m and kind == 'group' then
  for mid, _ in pairs(m.add or {}) do adding[#adding + 1] = mid end
  -- the usual case, users only: one EXISTS per CHUNK ids answers for all of them
  local all_users = true
  for first = 1, #adding, CHUNK do
    local keys = {}
    for i = first, math.min(first + CHUNK - 1, #adding) do
      keys[#keys + 1] = p .. ':user:' .. adding[i]
    end
    if redis.call('EXISTS', unpack(keys)) ~= #keys then all_users = false; break end
  end
  local missing = {}
  for _, mid in ipairs(adding) do
    if all_users or redis.call('EXISTS', p .. ':user:' .. mid) == 1 then kinds[mid] = 'user'
    elseif mid ~= id and redis.call('EXISTS', p .. ':group:' .. mid) == 1 then kinds[mid] = 'group'
    else missing[#missing + 1] = mid end
  end
  if #missing > 0 then return {'err', 'members', table.concat(missing, ',')} end
end
local new_doc = req.doc
if new_doc and new_doc ~= doc then
  local old_u = header.ix.u or {}
  for attr, value in pairs(req.unique) do
    if value and value ~= old_u[attr] then
      local owner = redis.call('HGET', p .. ':idx:' .. kind .. ':' .. attr, value)
      if owner and owner ~= id then return {'err', 'uniqueness', attr} end
    end
  end
end

local changed = false
if new_doc and new_doc ~= doc then
  local old_u = header.ix.u or {}
  for attr, value in pairs(req.unique) do
    local ikey = p .. ':idx:' .. kind .. ':' .. attr
    local old = old_u[attr]
    if old and old ~= value then redis.call('HDEL', ikey, old) end
    if value then redis.call('HSET', ikey, value, id) else req.unique[attr] = nil end
  end
  local old_m = header.ix.m or {}
  for attr, values in pairs(req.multi) do
    local keep = {}
    for _, v in ipairs(values) do keep[v] = true end
    for _, v in ipairs(old_m[attr] or {}) do
      if not keep[v] then redis.call('SREM', p .. ':idx:' .. kind .. ':' .. attr .. ':' .. v, id) end
    end
    for _, v in ipairs(values) do redis.call('SADD', p .. ':idx:' .. kind .. ':' .. attr .. ':' .. v, id) end
    if #values == 0 then req.multi[attr] = nil end
  end
  header.ix = {u = req.unique, m = req.multi}
  doc = new_doc
  changed = true
end

-- group membership: a hash member-id -> extras, and a reverse set per member
local added, removed = {}, {}
if m and kind == 'group' then
  local mkey = key .. ':members'
  if m.replace then
    local current = redis.call('HKEYS', mkey)
    local wanted = m.add or {}
    for _, mid in ipairs(current) do
      if wanted[mid] == nil then m.remove[#m.remove + 1] = mid end
    end
  end
  -- one HMGET and one HDEL per CHUNK members; the stored value names the member's kind
  local leaving, seen = {}, {}
  for _, mid in ipairs(m.remove or {}) do
    if not seen[mid] then seen[mid] = true; leaving[#leaving + 1] = mid end
  end
  for first = 1, #leaving, CHUNK do
    local chunk = {unpack(leaving, first, math.min(first + CHUNK - 1, #leaving))}
    local stored = redis.call('HMGET', mkey, unpack(chunk))
    local gone = {}
    for i, mid in ipairs(chunk) do
      local prev = stored[i]
      if prev then
        gone[#gone + 1] = mid
        removed[#removed + 1] = mid
        local bar = string.find(prev, '|', 1, true)
        local mkind = bar and string.sub(prev, 1, bar - 1)
        if mkind == 'user' or mkind == 'group' then
          redis.call('SREM', p .. ':' .. mkind .. ':' .. mid .. ':groups', id)
        else
          redis.call('SREM', p .. ':user:' .. mid .. ':groups', id)
          redis.call('SREM', p .. ':group:' .. mid .. ':groups', id)
        end
      end
    end
    if #gone > 0 then redis.call('HDEL', mkey, unpack(gone)) end
  end
  -- one HMGET and one HSET per CHUNK members; a reverse set per member that is new; no
  -- HMGET for a group that has no members yet (the first PATCH of a new group)
  local empty = #adding > 0 and redis.call('EXISTS', mkey) == 0
  for first = 1, #adding, CHUNK do
    local chunk = {unpack(adding, first, math.min(first + CHUNK - 1, #adding))}
    local stored = empty and {} or redis.call('HMGET', mkey, unpack(chunk))
    local writes = {}
    for i, mid in ipairs(chunk) do
      local prev = stored[i]
      local value = kinds[mid] .. '|' .. m.add[mid]
      if prev ~= value then
        writes[#writes + 1] = mid
        writes[#writes + 1] = value
        if not prev then
          added[#added + 1] = mid
          redis.call('SADD', p .. ':' .. kinds[mid] .. ':' .. mid .. ':groups', id)
        end
      end
    end
    if #writes > 0 then redis.call('HSET', mkey, unpack(writes)) end
  end
end

if not changed and #added == 0 and #removed == 0 and header.v > 0 then
  return {'ok', header.v, header.c, header.m, 0}
end

header.v = header.v + 1
header.m = req.now
redis.call('SET', key, cjson.encode(header) .. '\n' .. doc)
if req.mode == 'create' then redis.call('ZADD', p .. ':' .. kind .. 's', 0, id) end

local op = req.mode == 'create' and 'created' or 'updated'
local fields = {'kind', kind, 'id', id, 'op', op, 'v', header.v}
if #added > 0 then fields[#fields + 1] = 'added'; fields[#fields + 1] = cjson.encode(added) end
if #removed > 0 then fields[#fields + 1] = 'removed'; fields[#fields + 1] = cjson.encode(removed) end
if req.deprovision then fields[#fields + 1] = 'deprovision'; fields[#fields + 1] = '1' end
if req.request_id then fields[#fields + 1] = 'req'; fields[#fields + 1] = req.request_id end
redis.call('XADD', p .. ':changes', 'MAXLEN', '~', req.stream_maxlen, '*', unpack(fields))
return {'ok', header.v, header.c, header.m, 1}
