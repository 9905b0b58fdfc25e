-- apply.lua — applies one model's share of one Batch to Redis, exactly once, whole or not at all.
--
-- Embedded in the aggregator at build time (embed_lua.py), loaded once per connection with
-- SCRIPT LOAD and run with EVALSHA; window_apply.c builds the arguments and window_apply.h
-- documents every key and field written here.
--
-- Redis keeps a script's writes up to an error, so the script writes nothing until it knows no
-- write can fail: it first reads (the dedup bit, the watermark, every field it will add to and
-- every waiting side a label join needs), computes every write into a list, checks that no
-- counter would leave its range (integers within +-2^62, floats finite within +-1e300, existing
-- values numbers), and only then runs the list. The batch's dedup bit is one of those writes: a
-- replayed batch changes nothing, and a refused one can be applied later (from the DLQ).
--
-- Lateness is one rule per model: a window whose end + allowed lateness is at or below the
-- model's watermark (KEYS[2], the newest sane event time applied for the model less
-- windows.out_of_orderness) is final. The caller plans with the watermark it last saw and
-- marks each window late or not; when the watermark here disagrees for any window, the script
-- answers "stale" and writes nothing, and the caller plans again with the watermark returned.
--
-- KEYS: 1 dedup bitmap (the chunk of the batch's sequence), 2 watermark, 3 the dedup bitmap of
-- earlier versions (one per agent boot, read only), 4..3+R index sets (one per resolution,
-- R <= 2), then the window hashes.
-- ARGV: 1 the batch's bit in its chunk, 2 dedup ttl ms, 3 R, 4 watermark candidate, 5 the
-- model's key prefix "mw:{M}:", 6 the label horizon ms, 7 ln(gamma) of the latency histogram
-- (common/latency_hist.h), 8 its last bucket index, 9 the aggregator's wall clock ms, 10 the
-- width of the buckets join sides wait in (ms), 11 the number of hashes of a new bucket, 12 the
-- sequence (its bit in KEYS[3]), 13 allowed lateness ms, 14 the watermark's ttl ms, 15..14+R
-- the width of each resolution's windows (ms), 15+R..14+2R their retention (ms); then per
-- window hash: resolution slot (1-based), late as planned (0 no, 1 yes, 2 not judged), member,
-- start ms, ttl ms, number of integer fields NI, number of float fields NF, NI name/increment
-- pairs, NF name/increment pairs; then NP predictions and NL labels, each count followed by
-- that many sides of a join: bucket start ms, field (8 bytes: the prediction id's hash, its
-- first 4, little-endian, the shard selector), value (packed; layouts in window_apply.c, read
-- by unpack_prediction and unpack_label).
--
-- A side waiting for the other is field `field` of hash <prefix>jp:<bucket>:<shard>
-- (predictions) or <prefix>jl:<bucket>:<shard> (labels that came first), shard = selector mod
-- the bucket's number of hashes; the sorted sets <prefix>jpi and <prefix>jli list the live
-- buckets as "<bucket>:<hashes>" scored by bucket start. A bucket expires whole, label
-- horizon + bucket width after its start. Keys beyond KEYS all share the model's hash tag,
-- so they live on the shard of the declared keys. Index members of windows older than their
-- retention (start < now - retention - width) are trimmed.
--
-- Returns {1, joined, watermark} when applied (joined: the label/prediction pairs joined),
-- {0, 0, watermark} for a replay, {-1, reason} when the part cannot be applied (nothing
-- written), {-2, watermark} when the plan's lateness is stale (nothing written).

local INT_LIMIT, FLOAT_LIMIT, VALUE_LIMIT = 4611686018427387904, 1e300, 1e100
-- Locals for what runs per field or per side: a global lookup each time costs as much as the
-- work around it.
local call, tonumber, format, match, byte = redis.call, tonumber, string.format, string.match,
                                          string.byte

local wm = tonumber(call('GET', KEYS[2]) or '-1e18') or -1e18
if call('GETBIT', KEYS[1], ARGV[1]) == 1 or call('GETBIT', KEYS[3], ARGV[12]) == 1 then
  return {0, 0, wm}
end

local R = tonumber(ARGV[3])
local PFX, HORIZON = ARGV[5], tonumber(ARGV[6])
local LOG_GAMMA, LAST_BUCKET = tonumber(ARGV[7]), tonumber(ARGV[8])
local NOW, BUCKET_MS, NEW_SHARDS = tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11])
local LATENESS, WM_TTL = tonumber(ARGV[13]), ARGV[14]
local WIDTH, RETENTION, RES = {}, {}, {}
for r = 1, R do
  WIDTH[r] = tonumber(ARGV[14 + r])
  RETENTION[r] = tonumber(ARGV[14 + R + r])
  RES[r] = format('%d', WIDTH[r] / 1000)
end
local FINAL = {8, 16} -- prediction flags: window r was final when the prediction came

-- ---- deferred writes and the additions they make -------------------------------------------

local ops = {}   -- every write, in order, run once all are known to succeed
local function op(...) ops[#ops + 1] = {...} end

local adds = {}  -- key -> field -> {float?, sum of increments}, checked before any write
local function add(key, field, x, float)
  local k = adds[key]
  if not k then k = {} adds[key] = k end
  local f = k[field]
  if not f then f = {float, 0} k[field] = f end
  f[2] = f[2] + x
end

-- ---- the windows: parse, check the plan's lateness, plan the increments ----------------------

local windows, exists = {}, {}
local a = 15 + 2 * R
for k = 4 + R, #KEYS do
  local slot, planned = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  local w = {key = KEYS[k], idx = KEYS[3 + slot], member = ARGV[a + 2], start = ARGV[a + 3],
             ttl = ARGV[a + 4], ni = tonumber(ARGV[a + 5]), nf = tonumber(ARGV[a + 6]), at = a + 7}
  local late = tonumber(w.start) + WIDTH[slot] + LATENESS <= wm
  if planned ~= 2 and late ~= (planned == 1) then return {-2, wm} end
  for j = 0, w.ni - 1 do
    local v = ARGV[w.at + 2 * j + 1]
    if not match(v, '^%-?%d+$') then return {-1, 'bad increment ' .. v} end
    add(w.key, ARGV[w.at + 2 * j], tonumber(v), false)
  end
  for j = w.ni, w.ni + w.nf - 1 do
    local v = tonumber(ARGV[w.at + 2 * j + 1])
    if not v then return {-1, 'bad increment ' .. ARGV[w.at + 2 * j + 1]} end
    add(w.key, ARGV[w.at + 2 * j], v, true)
  end
  if w.ni + w.nf > 0 then exists[w.key] = true end
  windows[#windows + 1] = w
  a = w.at + 2 * (w.ni + w.nf)
end

-- ---- the two stores of waiting sides ----------------------------------------------------------

local function expiry(bucket)
  return math.min(tonumber(bucket), NOW) + BUCKET_MS + HORIZON
end

local stores = {}
-- What the batch makes of the waiting sides, written at the end with one HSET (and one HDEL)
-- per hash instead of one command per side: key -> field -> value, or false once taken; the
-- keys in the order first touched, and each key's fields in the order first set.
local view, view_keys, view_fields = {}, {}, {}

local function hget(key, field)
  local k = view[key]
  if k and k[field] ~= nil then return k[field] or nil end
  return call('HGET', key, field) or nil
end

local function hset(key, field, value)
  local k = view[key]
  if not k then
    k = {}
    view[key] = k
    view_keys[#view_keys + 1] = key
    view_fields[key] = {}
  end
  if k[field] == nil then
    local names = view_fields[key]
    names[#names + 1] = field
  end
  k[field] = value
end

-- The hash of store `st` that bucket `bucket` keeps selector `sel` in (`n` hashes), its name
-- made once per batch.
local function shard_key(st, bucket, sel, n)
  local keys = st.keys[bucket]
  if not keys then
    keys = {}
    st.keys[bucket] = keys
  end
  local shard = sel % n
  local key = keys[shard]
  if not key then
    key = PFX .. st.kind .. ':' .. bucket .. ':' .. format('%d', shard)
    keys[shard] = key
  end
  return key
end

-- The live buckets of store `kind` ('jp' or 'jl'), newest first, read once per call.
local function store(kind)
  local st = stores[kind]
  if st then return st end
  local idx = PFX .. kind .. 'i'
  local cutoff = format('%d', NOW - HORIZON - BUCKET_MS)
  op('ZREMRANGEBYSCORE', idx, '-inf', '(' .. cutoff)
  st = {kind = kind, idx = idx, starts = {}, shards = {}, touched = {}, keys = {}}
  for _, m in ipairs(call('ZREVRANGEBYSCORE', idx, '+inf', cutoff)) do
    local b, n = match(m, '^(%d+):(%d+)$')
    if b then
      st.starts[#st.starts + 1] = b
      st.shards[b] = tonumber(n)
    end
  end
  stores[kind] = st
  return st
end

-- Keep a side until the other comes (or its bucket expires).
local function put(st, bucket, sel, field, value)
  local n = st.shards[bucket]
  if not n then
    if expiry(bucket) <= NOW then return end -- waited out already
    n = NEW_SHARDS
    op('ZADD', st.idx, bucket, bucket .. ':' .. n)
    op('PEXPIREAT', st.idx, format('%d', NOW + BUCKET_MS + HORIZON))
    st.shards[bucket] = n
    local at = #st.starts + 1
    for i, b in ipairs(st.starts) do
      if tonumber(b) < tonumber(bucket) then at = i break end
    end
    table.insert(st.starts, at, bucket)
  end
  local key = shard_key(st, bucket, sel, n)
  hset(key, field, value)
  if not st.touched[key] then st.touched[key] = expiry(bucket) end -- the key names its bucket
end

-- Take the side waiting under `field` out of the store: its value and bucket, or nil.
local function take(st, sel, field)
  for _, b in ipairs(st.starts) do
    local key = shard_key(st, b, sel, st.shards[b])
    local v = hget(key, field)
    if v then
      hset(key, field, false)
      return v, b
    end
  end
  return nil
end

-- ---- joining a pair -----------------------------------------------------------------------------

local function unpack_prediction(v, bucket)
  local flags, offset, pos = struct.unpack('<BI4', v)
  local p = {flags = flags, ms = tonumber(bucket) + offset}
  if bit.band(flags, 1) ~= 0 then p.bin, p.score, pos = struct.unpack('<Hd', v, pos) end
  if bit.band(flags, 4) ~= 0 then p.value, pos = struct.unpack('<d', v, pos) end
  if p.value and not (math.abs(p.value) <= VALUE_LIMIT) then p.value = nil end -- kept before bounds
  p.version, pos = struct.unpack('<Bc0', v, pos)
  p.class = struct.unpack('<Bc0', v, pos)
  return p
end

local function unpack_label(v, bucket)
  local flags, offset, pos = struct.unpack('<BI4', v)
  local l = {ms = tonumber(bucket) + offset, y = -1, class = ''}
  if bit.band(flags, 1) ~= 0 then l.y = bit.band(flags, 2) ~= 0 and 1 or 0 end
  if bit.band(flags, 4) ~= 0 then
    l.value = struct.unpack('<d', v, pos)
    if not (math.abs(l.value) <= VALUE_LIMIT) then l.value = nil end
  else l.class = struct.unpack('<Bc0', v, pos) end
  return l
end

local joins = {} -- key -> field -> {float?, sum}: what joined pairs add, written at the end

local function join_add(key, field, x, float)
  add(key, field, x, float)
  local k = joins[key]
  if not k then k = {} joins[key] = k end
  local f = k[field]
  if not f then f = {float, 0} k[field] = f end
  f[2] = f[2] + x
end

local function incr(key, field) join_add(key, field, 1, false) end
local function add_float(key, field, x) join_add(key, field, x, true) end

local function window_exists(key)
  if exists[key] == nil then exists[key] = call('EXISTS', key) == 1 end
  return exists[key]
end

-- Add one pair to the prediction's windows that still exist and were not final (as additions,
-- written with the rest). False when a side does not unpack.
local function join(pv, pbucket, lv, lbucket)
  local okp, p = pcall(unpack_prediction, pv, pbucket)
  local okl, l = pcall(unpack_label, lv, lbucket)
  if not (okp and okl) then return false end
  local delay, skew = l.ms - p.ms, false
  if delay < 0 then delay, skew = 0, true end
  local dbucket = 0
  if delay > 1 then dbucket = math.min(LAST_BUCKET, math.ceil(math.log(delay) / LOG_GAMMA)) end
  for r = 1, R do
    local key = PFX .. 'w:' .. RES[r] .. ':' .. format('%d', p.ms - p.ms % WIDTH[r]) ..
                ':' .. p.version
    if bit.band(p.flags, FINAL[r]) == 0 and window_exists(key) then
      incr(key, 'pc:lab')
      if skew then incr(key, 'pc:skew') end
      join_add(key, 'pc:delay_ms', delay, false)
      incr(key, 'pc:dl:' .. dbucket)
      if p.bin and l.y >= 0 then
        local pos = bit.band(p.flags, 2) ~= 0
        local f
        if l.y == 1 then f = pos and 'pb:tp' or 'pb:fn' else f = pos and 'pb:fp' or 'pb:tn' end
        incr(key, f)
        incr(key, (l.y == 1 and 'pb:pos:' or 'pb:neg:') .. p.bin)
        local pr = math.min(math.max(p.score, 1e-15), 1 - 1e-15)
        add_float(key, 'pb:ll', l.y == 1 and -math.log(pr) or -math.log(1 - pr))
      end
      if p.class ~= '' and l.class ~= '' then
        incr(key, 'pm:n')
        if p.class == l.class then
          incr(key, 'pm:correct')
          incr(key, 'pm:tp:' .. p.class)
        else
          incr(key, 'pm:fp:' .. p.class)
          incr(key, 'pm:fn:' .. l.class)
        end
      end
      if p.value and l.value then
        local e = p.value - l.value
        incr(key, 'pr:n')
        add_float(key, 'pr:err', e)
        add_float(key, 'pr:abs', math.abs(e))
        add_float(key, 'pr:sq', e * e)
        local ape = l.value ~= 0 and math.abs(e) / math.abs(l.value)
        if ape and ape <= VALUE_LIMIT then
          incr(key, 'pr:ape_n')
          add_float(key, 'pr:ape', ape)
        end
      end
    end
  end
  return true
end

-- ---- label joins: predictions first, so a label in the same batch finds its prediction ---------

-- The shard selector of a side: the low 32 bits of the id's hash, its field's first 4 bytes
-- (little-endian). Read from the bytes, not sent as a number: no strtod per side.
local function selector(field)
  local b1, b2, b3, b4 = byte(field, 1, 4)
  return b1 + 256 * (b2 + 256 * (b3 + 256 * b4))
end

local joined = 0
local np = tonumber(ARGV[a])
a = a + 1
for j = 1, np do
  local bucket, field, value = ARGV[a], ARGV[a + 1], ARGV[a + 2]
  local sel = selector(field)
  a = a + 3
  local lv, lbucket = take(store('jl'), sel, field)
  if lv then
    if join(value, bucket, lv, lbucket) then joined = joined + 1 end
  else
    put(store('jp'), bucket, sel, field, value)
  end
end
local nl = tonumber(ARGV[a])
a = a + 1
for j = 1, nl do
  local bucket, field, value = ARGV[a], ARGV[a + 1], ARGV[a + 2]
  local sel = selector(field)
  a = a + 3
  local pv, pbucket = take(store('jp'), sel, field)
  if pv then
    if join(pv, pbucket, value, bucket) then joined = joined + 1 end
  else
    put(store('jl'), bucket, sel, field, value)
  end
end

-- ---- check every addition against what is there ---------------------------------------------

for key, fields in pairs(adds) do
  local names = {}
  for name in pairs(fields) do names[#names + 1] = name end
  local current = {}
  for from = 1, #names, 500 do -- unpack() has a stack limit
    local part = call('HMGET', key, unpack(names, from, math.min(from + 499, #names)))
    for i = 1, #part do current[from + i - 1] = part[i] end
  end
  for i, name in ipairs(names) do
    local float, x = fields[name][1], fields[name][2]
    local c, cur = 0, current[i]
    if cur then
      if not float and not match(cur, '^%-?%d+$') then
        return {-1, 'not an integer: ' .. key .. ' ' .. name}
      end
      c = tonumber(cur)
      if not c then return {-1, 'not a number: ' .. key .. ' ' .. name} end
    end
    local n, limit = c + x, float and FLOAT_LIMIT or INT_LIMIT
    if not (n >= -limit and n <= limit) then
      return {-1, 'overflow: ' .. key .. ' ' .. name}
    end
  end
end

-- ---- nothing can fail now: write --------------------------------------------------------------

call('SETBIT', KEYS[1], ARGV[1], 1)
call('PEXPIRE', KEYS[1], ARGV[2])
for r = 1, R do
  call('ZREMRANGEBYSCORE', KEYS[3 + r], '-inf',
             '(' .. format('%d', NOW - RETENTION[r] - WIDTH[r]))
end
for _, w in ipairs(windows) do
  call('ZADD', w.idx, w.start, w.member)
  call('PEXPIRE', w.idx, w.ttl)
  for j = 0, w.ni - 1 do
    call('HINCRBY', w.key, ARGV[w.at + 2 * j], ARGV[w.at + 2 * j + 1])
  end
  for j = w.ni, w.ni + w.nf - 1 do
    call('HINCRBYFLOAT', w.key, ARGV[w.at + 2 * j], ARGV[w.at + 2 * j + 1])
  end
  call('PEXPIRE', w.key, w.ttl)
end
for _, o in ipairs(ops) do call(unpack(o)) end
-- The waiting sides: per hash, the sides kept (in the order first set) and those taken. The
-- final fields and values are those of one HSET or HDEL per side in the batch's order.
for _, key in ipairs(view_keys) do
  local k, names = view[key], view_fields[key]
  local set, del = {}, {}
  for _, field in ipairs(names) do
    local v = k[field]
    if v then
      set[#set + 1] = field
      set[#set + 1] = v
    else
      del[#del + 1] = field
    end
  end
  for from = 1, #set, 1000 do -- unpack() has a stack limit
    call('HSET', key, unpack(set, from, math.min(from + 999, #set)))
  end
  for from = 1, #del, 500 do
    call('HDEL', key, unpack(del, from, math.min(from + 499, #del)))
  end
end
-- Join additions: the windows' own increments (from ARGV) are written above; these are the rest.
for key, fields in pairs(joins) do
  for name, f in pairs(fields) do
    if f[1] then
      call('HINCRBYFLOAT', key, name, format('%.17g', f[2]))
    else
      call('HINCRBY', key, name, format('%d', f[2]))
    end
  end
end
for _, st in pairs(stores) do
  for key, at in pairs(st.touched) do
    call('PEXPIREAT', key, format('%d', at))
  end
end
local candidate = tonumber(ARGV[4])
if candidate > wm then
  wm = candidate
  call('SET', KEYS[2], ARGV[4])
end
if wm > -1e18 then call('PEXPIRE', KEYS[2], WM_TTL) end
return {1, joined, wm}
