-- alert_state.lua — the alerting state's lease and its fenced writes (aggregator/alert/alerting.h).
--
-- One replica at a time evaluates rules and delivers notifications: the one whose id the lease
-- key holds. It takes and renews the lease here, and writes rule states, cursors and the
-- notification log only through here, so that a replica that lost the lease (paused, cut off)
-- can never overwrite what its successor wrote.
--
-- KEYS: 1 the lease key, then the hashes the writes name by index (2, 3, ...)
-- ARGV: 1 op, 2 the caller's holder id, then per op:
--   "lease"    3 ttl ms            take the lease if free, renew it if ours -> 1; held by another -> 0
--   "release"                     drop the lease if ours -> 1, else 0
--   "write"    3.. a list of       "H", key index, field, value  (HSET)
--                                  "D", key index, field         (HDEL)
--                                  -> 1 when written; 0 when the caller does not hold the lease
--                                  (then nothing is written)
local op, me = ARGV[1], ARGV[2]
local holder = redis.call('GET', KEYS[1])
if op == 'lease' then
  if holder == me then
    redis.call('PEXPIRE', KEYS[1], ARGV[3])
    return 1
  end
  if not holder then
    redis.call('SET', KEYS[1], me, 'PX', ARGV[3])
    return 1
  end
  return 0
elseif op == 'release' then
  if holder == me then
    redis.call('DEL', KEYS[1])
    return 1
  end
  return 0
elseif op == 'write' then
  if holder ~= me then
    return 0
  end
  local i = 3
  while i <= #ARGV do
    local kind, key = ARGV[i], KEYS[tonumber(ARGV[i + 1])]
    if not key then
      return redis.error_reply('alert_state.lua: no key ' .. tostring(ARGV[i + 1]))
    end
    if kind == 'H' then
      redis.call('HSET', key, ARGV[i + 2], ARGV[i + 3])
      i = i + 4
    elseif kind == 'D' then
      redis.call('HDEL', key, ARGV[i + 2])
      i = i + 3
    else
      return redis.error_reply('alert_state.lua: unknown write ' .. tostring(kind))
    end
  end
  return 1
end
return redis.error_reply('alert_state.lua: unknown op ' .. tostring(op))
