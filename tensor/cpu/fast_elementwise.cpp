// Vectorised elementwise/reduction/softmax/normalisation kernels (placeholder until written).
