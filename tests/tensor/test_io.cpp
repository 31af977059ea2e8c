// (filled in with its feature)
