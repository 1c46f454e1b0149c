/**
 * @module Redis Lua scripts: the algorithms of src/state/algorithms.ts, run atomically on the server. Each
 * touches one key (KEYS[1]), so they work on Redis Cluster too. Keep them in step with algorithms.ts: the
 * contract suite runs the same cases against both.
 */
import { createHash } from 'node:crypto';

export interface Script {
  readonly source: string;
  readonly sha: string;
}

function script(source: string): Script {
  return { source, sha: createHash('sha1').update(source).digest('hex') };
}

/**
 * ARGV: limit, windowMs, burst, now, cost[, count] → { taken, remaining, retryAfterMs, resetMs[, tokens] }:
 * `count` takes (default 1) decided as one after another (algorithms.ts `takeTokens`). With count 1, taken is
 * 0 or 1 (allowed); above 1 the exact tokens left follow as a string (Redis would truncate a number).
 */
export const TOKEN_BUCKET = script(`
local limit = tonumber(ARGV[1])
local size = tonumber(ARGV[2])
local cap = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
local cost = tonumber(ARGV[5])
local count = tonumber(ARGV[6]) or 1
local rate = limit / size
local h = redis.call('HMGET', KEYS[1], 't', 'ts')
local tokens = tonumber(h[1])
local ts = tonumber(h[2])
if tokens == nil or ts == nil then tokens = cap; ts = now end
if now > ts then
  tokens = math.min(cap, tokens + (now - ts) * rate)
  ts = now
end
local taken = 0
while taken < count and tokens >= cost do
  tokens = tokens - cost
  taken = taken + 1
end
local retry = 0
if taken < count then retry = math.ceil((cost - tokens) / rate) end
local reset = math.ceil((cap - tokens) / rate)
local exact = string.format('%.17g', tokens)
redis.call('HSET', KEYS[1], 't', exact, 'ts', string.format('%.17g', ts))
redis.call('PEXPIRE', KEYS[1], math.ceil(cap * size / limit) + 1000)
if count > 1 then return { taken, math.floor(tokens), retry, reset, exact } end
return { taken, math.floor(tokens), retry, reset }
`);

/**
 * ARGV: limit, windowMs, now, cost[, count] → { taken, remaining, retryAfterMs, resetMs }: `count` takes
 * (default 1) decided as one after another (algorithms.ts `takeWindows`). With count 1, taken is 0 or 1.
 */
export const SLIDING_WINDOW = script(`
local limit = tonumber(ARGV[1])
local size = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local count = tonumber(ARGV[5]) or 1
local win = math.floor(now / size)
local elapsed = now - win * size
local h = redis.call('HMGET', KEYS[1], 'w', 'c', 'p')
local w = tonumber(h[1]) or 0
local curr = tonumber(h[2]) or 0
local prev = tonumber(h[3]) or 0
if win == w + 1 then
  prev = curr
  curr = 0
elseif win > w + 1 then
  prev = 0
  curr = 0
elseif win < w then
  win = w
  elapsed = 0
end
local weighted = prev * (size - elapsed) / size
local taken = 0
while taken < count and weighted + curr + cost <= limit do
  curr = curr + cost
  taken = taken + 1
end
local retry = 0
if taken < count then
  local room = limit - cost - curr
  if room >= 0 and prev > 0 then
    retry = math.max(1, math.ceil(size * (prev - room) / prev - elapsed))
  elseif limit - cost < 0 then
    retry = 2 * size - elapsed
  else
    local room2 = limit - cost
    local into = 0
    if curr > room2 then into = math.ceil(size * (curr - room2) / curr) end
    retry = size - elapsed + into
  end
end
local used = weighted + curr
local remaining = math.max(0, math.floor(limit - used))
local reset = 0
if curr > 0 then reset = 2 * size - elapsed elseif prev > 0 then reset = size - elapsed end
redis.call('HSET', KEYS[1], 'w', string.format('%.17g', win), 'c', curr, 'p', prev)
redis.call('PEXPIRE', KEYS[1], 2 * size)
return { taken, remaining, retry, reset }
`);

/** ARGV: by, ttlMs → new value. */
export const INCREMENT = script(`
local v = redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return v
`);
