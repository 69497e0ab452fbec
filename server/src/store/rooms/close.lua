-- Closes the pre-queue with a seed; only the first close counts.
-- KEYS: state (hash), pre (list). ARGV: seed (hex).
redis.call('HSETNX', KEYS[1], 'seed', ARGV[1])
return state(KEYS[1], KEYS[2])
