// Op table entries: index (filled in with the index family).
