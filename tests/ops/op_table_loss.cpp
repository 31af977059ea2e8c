// Op table entries: loss (filled in with the loss family).
