// (placeholder: filled in by the GEMM work)
