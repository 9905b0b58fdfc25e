-- pipeline_health.lua — keep the newest health sample of one agent (pipeline_health.h).
--
-- KEYS[1]  mw:{pipeline}:agents   hash: agent id -> "boot|sealed_at_ms|sequence|dropped|spool|spool_max"
-- ARGV     agent id, boot id, sealed_at_ms, sequence, dropped_total, spool_bytes, spool_max_bytes
--
-- Replicas write samples of the batches they apply, and a batch may be applied again (a replay
-- after a crash) or later than a newer one (another partition): a sample replaces the stored one
-- only when it is newer — a higher sequence of the same process, or a later seal by another.
-- Returns 1 when written, 0 when the stored sample is as new or newer.
local stored = redis.call('HGET', KEYS[1], ARGV[1])
if stored then
  local boot, sealed_at, sequence = string.match(stored, '^([^|]*)|(-?%d+)|(%d+)|')
  if boot == ARGV[2] then
    if tonumber(sequence) >= tonumber(ARGV[4]) then
      return 0
    end
  elseif sealed_at and tonumber(sealed_at) > tonumber(ARGV[3]) then
    return 0
  end
end
redis.call('HSET', KEYS[1], ARGV[1],
  ARGV[2] .. '|' .. ARGV[3] .. '|' .. ARGV[4] .. '|' .. ARGV[5] .. '|' .. ARGV[6] .. '|' .. ARGV[7])
return 1
