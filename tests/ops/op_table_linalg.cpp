// Op table entries: linalg (filled in with the linalg family).
