"""The Lua scripts of the Redis session store: each operation is one script, so it is atomic and one round trip.

Keys of a session ``ID`` (``P`` = the store's prefix): ``P{ID}:meta`` (hash: voice, speaker,
created, last_active, audio_seconds, dropped_turns), ``P{ID}:turns`` (list of JSON turn headers),
``P{ID}:audio`` (list of PCM16 audio, parallel to the headers; empty for a text-only turn),
``P{ID}:lock`` (the speaking lock: a random token with an expiry) and ``Pindex`` (sorted set of
ids scored by last activity, for the session count and expiry). Every touch sets each session
key's TTL to the idle expiry, so Redis itself forgets an idle session.
"""

from __future__ import annotations

# KEYS: meta, turns, audio, lock, index (every script gets all five). ARGV[1] id, ARGV[2] now,
# ARGV[3] idle ttl in ms; the rest per script.
_TOUCH = """
local function touch()
  redis.call('HSET', KEYS[1], 'last_active', ARGV[2])
  for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[3]) end
  redis.call('ZADD', KEYS[5], ARGV[2], ARGV[1])
end
local function load(with_audio)
  local audio = {}
  if with_audio then audio = redis.call('LRANGE', KEYS[3], 0, -1) end
  return {redis.call('HGETALL', KEYS[1]), redis.call('LRANGE', KEYS[2], 0, -1), audio,
          redis.call('EXISTS', KEYS[4])}
end
"""

CREATE = """
-- ARGV[4] cutoff, ARGV[5] max sessions, ARGV[6] voice ('' none), ARGV[7] speaker
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', ARGV[4])
if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end
if redis.call('ZCARD', KEYS[5]) >= tonumber(ARGV[5]) then return -2 end
redis.call('HSET', KEYS[1], 'voice', ARGV[6], 'speaker', ARGV[7], 'created', ARGV[2],
           'last_active', ARGV[2], 'audio_seconds', '0', 'dropped_turns', '0')
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('ZADD', KEYS[5], ARGV[2], ARGV[1])
return 1
"""

GET = (
    _TOUCH
    + """
-- ARGV[4] '1' to include the audio
if redis.call('EXISTS', KEYS[1]) == 0 then return nil end
touch()
return load(ARGV[4] == '1')
"""
)

ADD_TURN = (
    _TOUCH
    + """
-- ARGV[4] header JSON (with 'seconds'), ARGV[5] PCM16 audio, ARGV[6] seconds, ARGV[7] max turns,
-- ARGV[8] max audio seconds, ARGV[9] '1' to refuse a turn over the bounds (else drop the oldest)
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1, 0} end
local seconds = tonumber(ARGV[6])
local total = tonumber(redis.call('HGET', KEYS[1], 'audio_seconds') or '0')
local count = redis.call('LLEN', KEYS[2])
local max_turns, max_audio = tonumber(ARGV[7]), tonumber(ARGV[8])
if ARGV[9] == '1' then
  if count + 1 > max_turns then return {-2, count} end
  if total + seconds > max_audio then return {-3, count} end
end
redis.call('RPUSH', KEYS[2], ARGV[4])
redis.call('RPUSH', KEYS[3], ARGV[5])
total, count = total + seconds, count + 1
local dropped = 0
while count > 1 and (count > max_turns or total > max_audio + 1e-9) do
  local old = cjson.decode(redis.call('LPOP', KEYS[2]))
  redis.call('LPOP', KEYS[3])
  total, count, dropped = total - old.seconds, count - 1, dropped + 1
end
if total < 0 then total = 0 end
redis.call('HSET', KEYS[1], 'audio_seconds', string.format('%.17g', total))
redis.call('HINCRBY', KEYS[1], 'dropped_turns', dropped)
touch()
return {1, count}
"""
)

DELETE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
redis.call('ZREM', KEYS[5], ARGV[1])
return 1
"""

ACQUIRE = (
    _TOUCH
    + """
-- ARGV[4] token, ARGV[5] lock ttl in ms. Returns -1 unknown, 0 busy, else the session (with audio).
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if not redis.call('SET', KEYS[4], ARGV[4], 'NX', 'PX', ARGV[5]) then return 0 end
touch()
return load(true)
"""
)

RENEW = (
    _TOUCH
    + """
-- ARGV[4] token, ARGV[5] lock ttl in ms: 1 while this holder has the lock (then the session stays active)
if redis.call('GET', KEYS[4]) ~= ARGV[4] then return 0 end
redis.call('PEXPIRE', KEYS[4], ARGV[5])
if redis.call('EXISTS', KEYS[1]) == 1 then touch() end
return 1
"""
)

RELEASE = (
    _TOUCH
    + """
-- ARGV[4] token: drop the lock if it is still ours; the session counts as active from now
if redis.call('GET', KEYS[4]) == ARGV[4] then redis.call('DEL', KEYS[4]) end
if redis.call('EXISTS', KEYS[1]) == 1 then touch() end
return 1
"""
)

EXPIRE = """
-- KEYS[1] index; ARGV[1] key prefix, ARGV[2] cutoff, ARGV[3] now. Deletes idle sessions that do
-- not speak; a speaking one (its lock held) stays, marked active now. Returns the deleted ids.
local gone = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])) do
  local base = ARGV[1] .. '{' .. id .. '}:'
  if redis.call('EXISTS', base .. 'lock') == 1 then
    redis.call('ZADD', KEYS[1], ARGV[3], id)
  else
    redis.call('DEL', base .. 'meta', base .. 'turns', base .. 'audio')
    redis.call('ZREM', KEYS[1], id)
    table.insert(gone, id)
  end
end
return gone
"""
