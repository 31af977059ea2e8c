// Op table entries: reduce (filled in with the reduce family).
