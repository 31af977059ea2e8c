// Op table entries: sort (filled in with the sort family).
