-- The room's state. KEYS: state (hash), pre (list).
return state(KEYS[1], KEYS[2])
