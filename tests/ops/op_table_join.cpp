// Op table entries: join (filled in with the join family).
