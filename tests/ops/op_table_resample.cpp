// Op table entries: resample (filled in with the resample family).
