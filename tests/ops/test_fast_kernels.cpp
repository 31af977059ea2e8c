// Fast kernels against their reference kernels (filled in with the fast kernels).
