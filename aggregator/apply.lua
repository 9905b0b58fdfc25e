-- apply.lua — applies one model's share of one Batch to Redis, exactly once.
--
-- Embedded in the aggregator at build time (embed_lua.py), loaded once per connection with
-- SCRIPT LOAD and run with EVALSHA; window_apply.c builds the arguments and window_apply.h
-- documents every key and field written here. The script sets the batch's bit in the dedup
-- bitmap and, only if the bit was clear, applies every increment of the model and joins its
-- labels with their predictions: a replayed batch changes nothing.
--
-- KEYS: 1 dedup bitmap, 2 watermark, 3..2+R index sets (one per resolution, R <= 2), then the
-- window hashes.
-- ARGV: 1 sequence, 2 dedup ttl ms, 3 R, 4 watermark candidate, 5 the model's key prefix
-- "mw:{M}:", 6 the label horizon ms, 7 ln(gamma) of the latency histogram (common/
-- latency_hist.h), 8 its last bucket index, 9 the aggregator's wall clock ms, 10 the width of
-- the buckets join sides wait in (ms), 11 the number of hashes of a new bucket, 12..11+R the
-- width of each resolution's windows (ms); then per window hash: resolution slot (1-based),
-- member, start ms, ttl ms, number of integer fields NI, number of float fields NF, NI
-- name/increment pairs, NF name/increment pairs; then NP predictions and NL labels, each
-- count followed by that many sides of a join: bucket start ms, shard selector (a 32-bit
-- number), field (8 bytes: the prediction id's hash), value (packed; layouts in
-- window_apply.c, read by unpack_prediction and unpack_label).
--
-- A side waiting for the other is field `field` of hash <prefix>jp:<bucket>:<shard>
-- (predictions) or <prefix>jl:<bucket>:<shard> (labels that came first), shard = selector mod
-- the bucket's number of hashes; the sorted sets <prefix>jpi and <prefix>jli list the live
-- buckets as "<bucket>:<hashes>" scored by bucket start. A bucket expires whole, label
-- horizon + bucket width after its start. Keys beyond KEYS all share the model's hash tag,
-- so they live on the shard of the declared keys.
--
-- Returns {applied, joined}: applied is 1, or 0 for a replay (then joined is 0 too); joined is
-- the number of label/prediction pairs this call joined.

if redis.call('SETBIT', KEYS[1], ARGV[1], 1) == 1 then return {0, 0} end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
local wm = tonumber(redis.call('GET', KEYS[2]) or '-1e18')
if tonumber(ARGV[4]) > wm then redis.call('SET', KEYS[2], ARGV[4]) end

local R = tonumber(ARGV[3])
local PFX, HORIZON = ARGV[5], tonumber(ARGV[6])
local LOG_GAMMA, LAST_BUCKET = tonumber(ARGV[7]), tonumber(ARGV[8])
local NOW, BUCKET_MS, NEW_SHARDS = tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11])
local WIDTH, RES = {}, {}
for r = 1, R do
  WIDTH[r] = tonumber(ARGV[11 + r])
  RES[r] = string.format('%d', WIDTH[r] / 1000)
end
local FINAL = {8, 16} -- prediction flags: window r was final when the prediction came

-- ---- the two stores of waiting sides ----------------------------------------------------------

local function expiry(bucket)
  return math.min(tonumber(bucket), NOW) + BUCKET_MS + HORIZON
end

local stores = {}

-- The live buckets of store `kind` ('jp' or 'jl'), newest first, read once per call.
local function store(kind)
  local st = stores[kind]
  if st then return st end
  local idx = PFX .. kind .. 'i'
  redis.call('ZREMRANGEBYSCORE', idx, '-inf',
             '(' .. string.format('%d', NOW - HORIZON - BUCKET_MS))
  st = {kind = kind, idx = idx, starts = {}, shards = {}, touched = {}}
  for _, m in ipairs(redis.call('ZREVRANGE', idx, 0, -1)) do
    local b, n = string.match(m, '^(%d+):(%d+)$')
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
    redis.call('ZADD', st.idx, bucket, bucket .. ':' .. n)
    redis.call('PEXPIREAT', st.idx, string.format('%d', NOW + BUCKET_MS + HORIZON))
    st.shards[bucket] = n
    local at = #st.starts + 1
    for i, b in ipairs(st.starts) do
      if tonumber(b) < tonumber(bucket) then at = i break end
    end
    table.insert(st.starts, at, bucket)
  end
  local key = PFX .. st.kind .. ':' .. bucket .. ':' .. string.format('%d', sel % n)
  redis.call('HSET', key, field, value)
  st.touched[key] = expiry(bucket)
end

-- Take the side waiting under `field` out of the store: its value and bucket, or nil.
local function take(st, sel, field)
  for _, b in ipairs(st.starts) do
    local key = PFX .. st.kind .. ':' .. b .. ':' .. string.format('%d', sel % st.shards[b])
    local v = redis.call('HGET', key, field)
    if v then
      redis.call('HDEL', key, field)
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
  p.version, pos = struct.unpack('<Bc0', v, pos)
  p.class = struct.unpack('<Bc0', v, pos)
  return p
end

local function unpack_label(v, bucket)
  local flags, offset, pos = struct.unpack('<BI4', v)
  local l = {ms = tonumber(bucket) + offset, y = -1, class = ''}
  if bit.band(flags, 1) ~= 0 then l.y = bit.band(flags, 2) ~= 0 and 1 or 0 end
  if bit.band(flags, 4) ~= 0 then l.value = struct.unpack('<d', v, pos)
  else l.class = struct.unpack('<Bc0', v, pos) end
  return l
end

local function incr(key, field) redis.call('HINCRBY', key, field, 1) end

local function add_float(key, field, x)
  redis.call('HINCRBYFLOAT', key, field, string.format('%.17g', x))
end

-- Add one pair to the prediction's windows that still exist and were not final. False when a
-- side does not unpack (nothing written: an error would end the script half-applied).
local function join(pv, pbucket, lv, lbucket)
  local okp, p = pcall(unpack_prediction, pv, pbucket)
  local okl, l = pcall(unpack_label, lv, lbucket)
  if not (okp and okl) then return false end
  local delay, skew = l.ms - p.ms, false
  if delay < 0 then delay, skew = 0, true end
  local dbucket = 0
  if delay > 1 then dbucket = math.min(LAST_BUCKET, math.ceil(math.log(delay) / LOG_GAMMA)) end
  for r = 1, R do
    local key = PFX .. 'w:' .. RES[r] .. ':' .. string.format('%d', p.ms - p.ms % WIDTH[r]) ..
                ':' .. p.version
    if bit.band(p.flags, FINAL[r]) == 0 and redis.call('EXISTS', key) == 1 then
      incr(key, 'pc:lab')
      if skew then incr(key, 'pc:skew') end
      redis.call('HINCRBY', key, 'pc:delay_ms', delay)
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
        if l.value ~= 0 then
          incr(key, 'pr:ape_n')
          add_float(key, 'pr:ape', math.abs(e) / math.abs(l.value))
        end
      end
    end
  end
  return true
end

-- ---- the windows --------------------------------------------------------------------------------

local a = 12 + R
for k = 3 + R, #KEYS do
  local idx = KEYS[2 + tonumber(ARGV[a])]
  local member, start, ttl = ARGV[a + 1], ARGV[a + 2], tonumber(ARGV[a + 3])
  local ni, nf = tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5])
  a = a + 6
  redis.call('ZADD', idx, start, member)
  redis.call('PEXPIRE', idx, ttl)
  for j = 1, ni do
    redis.call('HINCRBY', KEYS[k], ARGV[a], ARGV[a + 1])
    a = a + 2
  end
  for j = 1, nf do
    redis.call('HINCRBYFLOAT', KEYS[k], ARGV[a], ARGV[a + 1])
    a = a + 2
  end
  redis.call('PEXPIRE', KEYS[k], ttl)
end

-- ---- label joins: predictions first, so a label in the same batch finds its prediction ---------

local joined = 0
local np = tonumber(ARGV[a])
a = a + 1
for j = 1, np do
  local bucket, sel, field, value = ARGV[a], tonumber(ARGV[a + 1]), ARGV[a + 2], ARGV[a + 3]
  a = a + 4
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
  local bucket, sel, field, value = ARGV[a], tonumber(ARGV[a + 1]), ARGV[a + 2], ARGV[a + 3]
  a = a + 4
  local pv, pbucket = take(store('jp'), sel, field)
  if pv then
    if join(pv, pbucket, value, bucket) then joined = joined + 1 end
  else
    put(store('jl'), bucket, sel, field, value)
  end
end
for _, st in pairs(stores) do
  for key, at in pairs(st.touched) do
    redis.call('PEXPIREAT', key, string.format('%d', at))
  end
end
return {1, joined}
