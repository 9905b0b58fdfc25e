-- apply.lua — applies one model's share of one Batch to Redis, exactly once.
--
-- Embedded in the aggregator at build time (embed_lua.py), loaded once per connection with
-- SCRIPT LOAD and run with EVALSHA; window_apply.c builds the arguments and window_apply.h
-- documents every key and field written here. The script sets the batch's bit in the dedup
-- bitmap and, only if the bit was clear, applies every increment of the model and joins its
-- labels with their predictions: a replayed batch changes nothing.
--
-- KEYS: 1 dedup bitmap, 2 watermark, 3..2+R index sets (one per resolution), then the window
-- hashes.
-- ARGV: 1 sequence, 2 dedup ttl ms, 3 R, 4 watermark candidate, 5 the model's key prefix
-- "mw:{M}:", 6 the label horizon ms, 7 ln(gamma) of the latency histogram (common/
-- latency_hist.h), 8 its last bucket index; then per window hash: resolution slot (1-based),
-- member, start ms, ttl ms, number of integer fields NI, number of float fields NF, NI
-- name/increment pairs, NF name/increment pairs; then NP, NP prediction id/spec pairs, NL, NL
-- label id/spec pairs (specs: see prediction_spec and label_spec in window_apply.c).
--
-- Returns {applied, joined}: applied is 1, or 0 for a replay (then joined is 0 too); joined is
-- the number of label/prediction pairs this call joined.

local function split(s)
  local t = {}
  for f in string.gmatch(s .. '\31', '(.-)\31') do t[#t + 1] = f end
  return t
end

local LOG_GAMMA = tonumber(ARGV[7])
local LAST_BUCKET = tonumber(ARGV[8])

local function join(ps, ls)
  local p, l = split(ps), split(ls)
  local delay, skew = tonumber(l[5]) - tonumber(p[3]), false
  if delay < 0 then delay, skew = 0, true end
  local bucket = 0
  if delay > 1 then bucket = math.min(LAST_BUCKET, math.ceil(math.log(delay) / LOG_GAMMA)) end
  local y = tonumber(l[1])
  for k = 1, 2 do
    local key = p[k]
    if key ~= '' and redis.call('EXISTS', key) == 1 then
      redis.call('HINCRBY', key, 'pc:lab', 1)
      if skew then redis.call('HINCRBY', key, 'pc:skew', 1) end
      redis.call('HINCRBY', key, 'pc:delay_ms', delay)
      redis.call('HINCRBY', key, 'pc:dl:' .. bucket, 1)
      if p[4] == '1' and y >= 0 then
        local pos = p[5] == '1'
        local f
        if y == 1 then f = pos and 'pb:tp' or 'pb:fn' else f = pos and 'pb:fp' or 'pb:tn' end
        redis.call('HINCRBY', key, f, 1)
        redis.call('HINCRBY', key, (y == 1 and 'pb:pos:' or 'pb:neg:') .. p[6], 1)
        local pr = math.min(math.max(tonumber(p[7]), 1e-15), 1 - 1e-15)
        local ll = y == 1 and -math.log(pr) or -math.log(1 - pr)
        redis.call('HINCRBYFLOAT', key, 'pb:ll', string.format('%.17g', ll))
      end
      if p[8] ~= '' and l[2] == 'c' and l[3] ~= '' then
        redis.call('HINCRBY', key, 'pm:n', 1)
        if p[8] == l[3] then
          redis.call('HINCRBY', key, 'pm:correct', 1)
          redis.call('HINCRBY', key, 'pm:tp:' .. p[8], 1)
        else
          redis.call('HINCRBY', key, 'pm:fp:' .. p[8], 1)
          redis.call('HINCRBY', key, 'pm:fn:' .. l[3], 1)
        end
      end
      if p[9] == '1' and l[2] == 'v' then
        local yv = tonumber(l[4])
        local e = tonumber(p[10]) - yv
        redis.call('HINCRBY', key, 'pr:n', 1)
        redis.call('HINCRBYFLOAT', key, 'pr:err', string.format('%.17g', e))
        redis.call('HINCRBYFLOAT', key, 'pr:abs', string.format('%.17g', math.abs(e)))
        redis.call('HINCRBYFLOAT', key, 'pr:sq', string.format('%.17g', e * e))
        if yv ~= 0 then
          redis.call('HINCRBY', key, 'pr:ape_n', 1)
          redis.call('HINCRBYFLOAT', key, 'pr:ape',
                     string.format('%.17g', math.abs(e) / math.abs(yv)))
        end
      end
    end
  end
end

if redis.call('SETBIT', KEYS[1], ARGV[1], 1) == 1 then return {0, 0} end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
local wm = tonumber(redis.call('GET', KEYS[2]) or '-1e18')
if tonumber(ARGV[4]) > wm then redis.call('SET', KEYS[2], ARGV[4]) end
local r = tonumber(ARGV[3])
local pfx, horizon = ARGV[5], ARGV[6]
local a = 9
for k = 3 + r, #KEYS do
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
local joined = 0
local np = tonumber(ARGV[a])
a = a + 1
for j = 1, np do
  local id, spec = ARGV[a], ARGV[a + 1]
  a = a + 2
  local label = redis.call('GET', pfx .. 'l:' .. id)
  if label then
    join(spec, label)
    joined = joined + 1
    redis.call('DEL', pfx .. 'l:' .. id)
  else
    redis.call('SET', pfx .. 'p:' .. id, spec, 'PX', horizon)
  end
end
local nl = tonumber(ARGV[a])
a = a + 1
for j = 1, nl do
  local id, spec = ARGV[a], ARGV[a + 1]
  a = a + 2
  local pred = redis.call('GET', pfx .. 'p:' .. id)
  if pred then
    join(pred, spec)
    joined = joined + 1
    redis.call('DEL', pfx .. 'p:' .. id)
  else
    redis.call('SET', pfx .. 'l:' .. id, spec, 'PX', horizon)
  end
end
return {1, joined}
