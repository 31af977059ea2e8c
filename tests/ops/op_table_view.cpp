// Op table entries: view (filled in with the view family).
