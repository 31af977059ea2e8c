// (placeholder: filled in by the convolution work)
