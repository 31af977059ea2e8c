// Op table entries: softmax (filled in with the softmax family).
