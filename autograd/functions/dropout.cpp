// (placeholder: filled in by the dropout work)
