//! The two Lua scripts, each one atomic step in Redis.
//!
//! **Publish** appends a batch of one family: it creates the family's epoch
//! if absent, takes the next sequence numbers from the family's counter,
//! builds each frame from its parts and the cursor, appends the items to the
//! service-level and each resource history (trimmed to the bound, raising
//! the channel's floor past what it drops), refreshes the TTLs and publishes
//! the batch on the family's feed — so no log is in history unannounced,
//! nor announced without being in history. It returns the epoch and the
//! first sequence number. Its cost is per list, not per log: one push, one
//! trim and one TTL refresh per list, and one `HSET` of the floors and the
//! resources' last sequence numbers. A keyed request (`Idempotency-Key`)
//! first looks for the family's record of the key: with the same body
//! fingerprint it stores nothing and returns what the first request got;
//! with another, it refuses; else it appends and records the key, in the
//! same atomic step.
//!
//! **Read** returns, for several channels of one family, the epoch (created
//! if absent), the head (last sequence number), and per channel its floor
//! and the items after a start: the cursor's sequence number when the cursor
//! resumes exactly (same epoch, between floor and head), else the floor.
//! Reading all channels of a family in one script gives one consistent
//! snapshot. The resume/gap *decision* is made in Rust from what it returns;
//! the script only needs to know where to start.

use std::sync::LazyLock;

use redis::Script;

/// KEYS: meta, chans, root list, feed channel, the idempotency record,
/// then one resource list per item. ARGV: candidate epoch, max items per
/// list, TTL seconds, body fingerprint (empty: no key), record TTL in
/// milliseconds, then (resource id, frame head, frame tail) per item.
/// Returns {epoch, first}, {epoch, first, 'duplicate'} for a request the
/// record answers, or {'reused'}.
pub static PUBLISH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local meta, chans, root, feed, record = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local max, ttl, fingerprint = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
if fingerprint ~= '' then
  local seen = redis.call('GET', record)
  if seen then
    local epoch, first, was = string.match(seen, '^(%S+) (%d+) (%S+)$')
    if was ~= fingerprint then return {'reused'} end
    return {epoch, tonumber(first), 'duplicate'}
  end
end
redis.call('HSETNX', meta, 'epoch', ARGV[1])
local epoch = redis.call('HGET', meta, 'epoch')
local n = (#ARGV - 5) / 3
local first = redis.call('HINCRBY', meta, 'seq', n) - n + 1
local out = {epoch, '\n'}
local all, groups, order = {}, {}, {}
for i = 1, n do
  local res, head, tail = ARGV[3 * i + 3], ARGV[3 * i + 4], ARGV[3 * i + 5]
  local seq = string.format('%d', first + i - 1)
  local item = seq .. '\t' .. res .. '\t' .. head .. epoch .. '-' .. seq .. tail
  all[i] = item
  local group = groups[res]
  if group == nil then
    group = {key = KEYS[5 + i], items = {}}
    groups[res] = group
    order[#order + 1] = res
  end
  group.items[#group.items + 1] = item
  group.last = seq
  out[#out + 1] = string.format('%d', #item) .. ':' .. item
end
-- One push, one trim and one TTL per list; the floor is the last item
-- dropped, as if the items had been pushed one at a time.
-- Variadic calls go in slices of 1000 arguments (Lua's unpack is bounded).
local function variadic(cmd, key, args)
  local reply
  for at = 1, #args, 1000 do
    reply = redis.call(cmd, key, unpack(args, at, math.min(at + 999, #args)))
  end
  return reply
end
local fields = {}
local function append(key, items, floor_field)
  local len = variadic('RPUSH', key, items)
  if len > max then
    local dropped = redis.call('LPOP', key, len - max)
    fields[#fields + 1] = floor_field
    fields[#fields + 1] = string.match(dropped[#dropped], '^(%d+)')
  end
  redis.call('EXPIRE', key, ttl)
end
append(root, all, 'floor')
for _, res in ipairs(order) do
  local group = groups[res]
  append(group.key, group.items, 'floor:' .. res)
  fields[#fields + 1] = 'last:' .. res
  fields[#fields + 1] = group.last
end
variadic('HSET', chans, fields)
redis.call('EXPIRE', meta, ttl)
redis.call('EXPIRE', chans, ttl)
redis.call('PUBLISH', feed, table.concat(out))
if fingerprint ~= '' then
  redis.call('SET', record, epoch .. ' ' .. string.format('%d', first) .. ' ' .. fingerprint, 'PX', ARGV[5])
end
return {epoch, first}
",
    )
});

/// KEYS: meta, chans, then one history list per channel. ARGV: candidate
/// epoch, TTL seconds, then per channel: resource id (empty for the
/// service-level channel), mode, cursor epoch, cursor seq. Modes: `L` live
/// (no items), `E` earliest, `A` after the cursor, `N` the last `seq` items.
/// Returns {epoch, head, {floor, start, {items}} per channel}, where
/// `start` is the sequence number the items follow.
pub static READ: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local meta, chans = KEYS[1], KEYS[2]
if redis.call('HSETNX', meta, 'epoch', ARGV[1]) == 1 then
  redis.call('EXPIRE', meta, tonumber(ARGV[2]))
end
local epoch = redis.call('HGET', meta, 'epoch')
local head = tonumber(redis.call('HGET', meta, 'seq') or '0')
local function seq_of(item) return tonumber(string.match(item, '^(%d+)')) end
local function after(key, s)
  local lo, hi = 0, redis.call('LLEN', key)
  local n = hi
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if seq_of(redis.call('LINDEX', key, mid)) <= s then lo = mid + 1 else hi = mid end
  end
  if lo >= n then return {} end
  return redis.call('LRANGE', key, lo, -1)
end
local out = {epoch, head}
for i = 1, (#ARGV - 2) / 4 do
  local res, mode = ARGV[4 * i - 1], ARGV[4 * i]
  local key = KEYS[2 + i]
  local floor
  if res == '' then
    floor = tonumber(redis.call('HGET', chans, 'floor') or '0')
  else
    floor = tonumber(redis.call('HGET', chans, 'floor:' .. res) or '0')
    -- A resource list that expired while its family lived on lost its items.
    if redis.call('EXISTS', key) == 0 then
      floor = math.max(floor, tonumber(redis.call('HGET', chans, 'last:' .. res) or '0'))
    end
  end
  local items, start = {}, head
  if mode == 'E' then
    start = floor
    items = after(key, floor)
  elseif mode == 'A' then
    start = tonumber(ARGV[4 * i + 2])
    if ARGV[4 * i + 1] ~= epoch or start < floor or start > head then start = floor end
    items = after(key, start)
  elseif mode == 'N' then
    -- The latest n items: start after the one before them, or the floor.
    local n = tonumber(ARGV[4 * i + 2])
    local len = redis.call('LLEN', key)
    if n >= len then
      start = floor
      items = redis.call('LRANGE', key, 0, -1)
    else
      start = seq_of(redis.call('LINDEX', key, len - n - 1))
      items = redis.call('LRANGE', key, len - n, -1)
    end
  end
  out[#out + 1] = {floor, start, items}
end
return out
",
    )
});
