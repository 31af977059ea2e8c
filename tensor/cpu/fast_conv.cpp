// Fast convolution paths (placeholder until written).
