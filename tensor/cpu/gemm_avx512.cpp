// Fast CPU GEMM micro-kernels for AVX-512 (placeholder until written).
