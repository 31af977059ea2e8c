// Op table entries: norm (filled in with the norm family).
