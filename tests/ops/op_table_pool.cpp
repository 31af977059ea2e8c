// Op table entries: pool (filled in with the pool family).
