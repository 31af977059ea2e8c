// Op table entries: conv (filled in with the conv family).
