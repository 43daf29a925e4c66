/**
 * Lua for the Redis brute-force store: `algorithm.ts` and the memory store's eviction, translated line by
 * line so every replica applies exactly the same rules, each call atomic in one round trip. Kept in a .ts
 * file (not .lua) so the build ships it without a copy step.
 *
 * Layout (all keys share one hash tag, so a script only touches one cluster slot):
 * - KEYS[1] `<prefix>c:<client>`: hash {f failures, l lastFailureMs, b blockedUntilMs, s lastBlockSeconds},
 *   expiring a window after the client's last activity — Redis expiry does the forgetting in production;
 * - KEYS[2] `<prefix>unblocked`, KEYS[3] `<prefix>blocked`: sorted sets of client keys scored by a global
 *   sequence (KEYS[4] `<prefix>seq`), the two insertion-ordered Maps of the memory store;
 * - ARGV[1] is the record-key prefix, so eviction can name other clients' hashes.
 *
 * The clock is the caller's (ARGV), never Redis TIME, as in the memory store: tests inject it, and replicas
 * stay consistent as long as their clocks are. Numbers go back and forth as strings with %.17g, which
 * round-trips IEEE doubles exactly (Redis would truncate a Lua number reply to an integer).
 */

const COMMON = `
local RECORD_PREFIX = ARGV[1]
local UNBLOCKED, BLOCKED = KEYS[2], KEYS[3]

local function num(x) return string.format('%.17g', x) end

local function load(key)
  local v = redis.call('HMGET', key, 'f', 'l', 'b', 's')
  if not v[1] then return nil end
  return { f = tonumber(v[1]), l = tonumber(v[2]), b = tonumber(v[3]), s = tonumber(v[4]) }
end

-- A record as the reply carries it: failures, lastFailureMs, blockedUntilMs, lastBlockSeconds.
local function fields(r) return num(r.f), num(r.l), num(r.b), num(r.s) end

local function isForgotten(r, now, ttlSeconds) return now - math.max(r.l, r.b) > ttlSeconds * 1000 end
local function isBlocked(r, now) return now < r.b end

-- Removes a client's record and index entries; true if any existed.
local function drop(member)
  local removed = redis.call('DEL', RECORD_PREFIX .. member)
  removed = removed + redis.call('ZREM', UNBLOCKED, member) + redis.call('ZREM', BLOCKED, member)
  return removed > 0
end
`;

/**
 * KEYS: record, unblocked, blocked. ARGV: prefix, client, now, ttlSeconds. Returns the live record's
 * fields, or nil (a forgotten record is dropped, as the memory store's checkNow does).
 */
export const CHECK_SCRIPT = `${COMMON}
local now, ttlSeconds = tonumber(ARGV[3]), tonumber(ARGV[4])
local r = load(KEYS[1])
if not r then return false end
if isForgotten(r, now, ttlSeconds) then
  drop(ARGV[2])
  return false
end
return { fields(r) }
`;

/**
 * The failure logic shared by FAILURE_SCRIPT and ATTEMPT_SCRIPT. KEYS: record, unblocked, blocked, seq.
 * ARGV: prefix, client, now, maxFailedAttempts, ttlSeconds, initialBlockSeconds, blockMultiplier,
 * maxBlockSeconds, maxTrackedClients. Defines `put(member, previous, r)`, which stores a client's record
 * within the bound, and `recordFailure(previous)`, which stores the failure and returns (failures,
 * blockSeconds, record), blockSeconds 0 when this failure started no block.
 */
const FAILURE_LOGIC = `${COMMON}
local member, now = ARGV[2], tonumber(ARGV[3])
local maxFailed, ttlSeconds = tonumber(ARGV[4]), tonumber(ARGV[5])
local initialBlock, multiplier = tonumber(ARGV[6]), tonumber(ARGV[7])
local maxBlock, maxTracked = tonumber(ARGV[8]), tonumber(ARGV[9])

local function count() return redis.call('ZCARD', UNBLOCKED) + redis.call('ZCARD', BLOCKED) end
local function first(set) return redis.call('ZRANGE', set, 0, 0)[1] end

-- Index entries whose record Redis has expired are free room; clear a few from the oldest end.
local function pruneExpired(set)
  for _ = 1, 16 do
    local oldest = first(set)
    if not oldest or redis.call('EXISTS', RECORD_PREFIX .. oldest) == 1 then return end
    redis.call('ZREM', set, oldest)
  end
end

-- memory.ts evictOne: the oldest unblocked record, or the oldest block if it has ended before that.
local function evictOne()
  local u, b = first(UNBLOCKED), first(BLOCKED)
  if not b then
    if u then drop(u) end
    return
  end
  local br = load(RECORD_PREFIX .. b)
  if not br then drop(b) return end
  local ur = u and load(RECORD_PREFIX .. u)
  if u and not ur then drop(u) return end
  local blockEndedFirst = not isBlocked(br, now) and (not u or br.b <= ur.l)
  if not u or blockEndedFirst then drop(b) else drop(u) end
end

-- memory.ts put: r becomes the client's record, newest in the index its state orders it by.
local function put(client, previous, r)
  if previous then
    drop(client)
  else
    redis.call('ZREM', UNBLOCKED, client)
    redis.call('ZREM', BLOCKED, client)
    pruneExpired(UNBLOCKED)
    pruneExpired(BLOCKED)
    while count() >= maxTracked do evictOne() end
  end
  local key = RECORD_PREFIX .. client
  redis.call('HSET', key, 'f', num(r.f), 'l', num(r.l), 'b', num(r.b), 's', num(r.s))
  -- Forgotten a window after the last activity (isForgotten), +1 ms so expiry never precedes the rule.
  redis.call('PEXPIRE', key, math.ceil(math.max(r.l, r.b) + ttlSeconds * 1000 - now) + 1)
  local seq = redis.call('INCR', KEYS[4])
  redis.call('ZADD', isBlocked(r, now) and BLOCKED or UNBLOCKED, seq, client)
  -- Every record is gone once the longest block and a window have passed: so are the indexes then.
  local indexLifeMs = (maxBlock + ttlSeconds) * 1000 + 1000
  for _, index in ipairs({ UNBLOCKED, BLOCKED, KEYS[4] }) do redis.call('PEXPIRE', index, indexLifeMs) end
end

local function recordFailure(previous)
  -- algorithm.ts applyFailure / nextBlockSeconds
  local current = previous
  if current and isForgotten(current, now, ttlSeconds) then current = nil end
  local failures = (current and current.f or 0) + 1
  local nextBlock = 0
  if current and isBlocked(current, now) then
    nextBlock = 0
  elseif current and current.s > 0 then
    nextBlock = math.ceil(current.s * multiplier)
  elseif failures >= maxFailed then
    nextBlock = initialBlock
  end
  local blockSeconds = math.min(nextBlock, maxBlock)
  local r
  if blockSeconds == 0 then
    r = { f = failures, l = now, b = current and current.b or 0, s = current and current.s or 0 }
  else
    r = { f = failures, l = now, b = now + blockSeconds * 1000, s = blockSeconds }
  end
  put(member, previous, r)
  return failures, blockSeconds, r
end
`;

/**
 * A failure recorded whatever the client's state (the store's primitive; the gate uses ATTEMPT_SCRIPT).
 * KEYS and ARGV as FAILURE_LOGIC. Returns {failures, blockSeconds, record…} (blockSeconds '' when this
 * failure started no block; the record's four fields as `fields` gives them).
 */
export const FAILURE_SCRIPT = `${FAILURE_LOGIC}
local failures, blockSeconds, r = recordFailure(load(KEYS[1]))
return { num(failures), blockSeconds > 0 and num(blockSeconds) or '', fields(r) }
`;

/**
 * One authentication attempt, checked and recorded in one atomic step (memory.ts attemptNow). KEYS and ARGV
 * as FAILURE_LOGIC, plus ARGV[10] '1' when the presented key was valid. Returns {'blocked', '', record…}
 * (nothing recorded), {'ok'} (the record cleared) or {'failed', blockSeconds, record…}, the record's four
 * fields as `fields` gives them: the client's record after the attempt, which a replica keeps as its
 * shadow (FallbackBruteForceStore).
 */
export const ATTEMPT_SCRIPT = `${FAILURE_LOGIC}
local previous = load(KEYS[1])
if previous and isForgotten(previous, now, ttlSeconds) then
  drop(member)
  previous = nil
end
if previous and isBlocked(previous, now) then return { 'blocked', '', fields(previous) } end
if ARGV[10] == '1' then
  if previous then drop(member) end
  return { 'ok' }
end
local _, blockSeconds, r = recordFailure(previous)
return { 'failed', blockSeconds > 0 and num(blockSeconds) or '', fields(r) }
`;

/**
 * The records a replica counted on its own while it could not reach Redis, written back when Redis
 * returns: each is merged field by field with the record Redis holds (algorithm.ts strictestOf), so a block or a
 * count made during the outage survives it and Redis's own is never shortened. KEYS: -, unblocked,
 * blocked, seq. ARGV as FAILURE_LOGIC with ARGV[2] unused, then from ARGV[10] groups of five: client and
 * its record's four fields. Returns the merged records in the same groups of five (forgotten ones left out).
 */
export const MERGE_SCRIPT = `${FAILURE_LOGIC}
local out = {}
for i = 10, #ARGV, 5 do
  local client = ARGV[i]
  local r = { f = tonumber(ARGV[i + 1]), l = tonumber(ARGV[i + 2]), b = tonumber(ARGV[i + 3]), s = tonumber(ARGV[i + 4]) }
  local theirs = load(RECORD_PREFIX .. client)
  if theirs and isForgotten(theirs, now, ttlSeconds) then
    drop(client)
    theirs = nil
  end
  if theirs then
    r = { f = math.max(r.f, theirs.f), l = math.max(r.l, theirs.l), b = math.max(r.b, theirs.b), s = math.max(r.s, theirs.s) }
  end
  if not isForgotten(r, now, ttlSeconds) then
    put(client, theirs, r)
    for _, v in ipairs({ client, fields(r) }) do out[#out + 1] = v end
  end
end
return out
`;

/** KEYS: record, unblocked, blocked. ARGV: prefix, client. Returns 1 if the client had a record. */
export const FORGET_SCRIPT = `${COMMON}
return drop(ARGV[2]) and 1 or 0
`;

/**
 * One page of the tracked clients, so that listing 100k records never holds Redis (and every replica's
 * authentication) for one long script. KEYS: -, unblocked, blocked. ARGV: prefix, now, ttlSeconds, set
 * ('b' blocked, 'u' unblocked), after (the sequence score the previous page ended at, '-inf' to start),
 * count. Pages are keyed by score, which never changes for a member, so records added or dropped between
 * pages do not shift the ones still to come. Drops forgotten records (as the memory store's list does).
 * Returns {lastScore or '', client, f, l, b, s, client, …}; '' when the set has no more members.
 */
export const LIST_PAGE_SCRIPT = `${COMMON}
local now, ttlSeconds = tonumber(ARGV[2]), tonumber(ARGV[3])
local set = ARGV[4] == 'b' and BLOCKED or UNBLOCKED
local after = ARGV[5] == '-inf' and '-inf' or ('(' .. ARGV[5])
local page = redis.call('ZRANGEBYSCORE', set, after, '+inf', 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[6]))
local out = { '' }
for i = 1, #page, 2 do
  local member = page[i]
  out[1] = page[i + 1]
  local r = load(RECORD_PREFIX .. member)
  if not r or isForgotten(r, now, ttlSeconds) then
    drop(member)
  else
    for _, v in ipairs({ member, num(r.f), num(r.l), num(r.b), num(r.s) }) do out[#out + 1] = v end
  end
end
if #page < tonumber(ARGV[6]) * 2 then out[1] = '' end
return out
`;

/** KEYS: -, unblocked, blocked. ARGV: prefix. Tracked clients, after dropping index entries Redis expired. */
export const SIZE_SCRIPT = `${COMMON}
for _, set in ipairs({ UNBLOCKED, BLOCKED }) do
  for _ = 1, 64 do
    local oldest = redis.call('ZRANGE', set, 0, 0)[1]
    if not oldest or redis.call('EXISTS', RECORD_PREFIX .. oldest) == 1 then break end
    redis.call('ZREM', set, oldest)
  end
end
return redis.call('ZCARD', UNBLOCKED) + redis.call('ZCARD', BLOCKED)
`;
