// How a convolution's output work is split into blocks for the threads, shared by the im2col
// route (blocks of images, tensor/cpu/fast_conv.cpp) and Winograd (blocks of tile rows,
// tensor/cpu/winograd_conv.cpp).
//
// Every output element is one GEMM dot product whose summation order does not depend on how the
// columns are split, so the block size may follow the thread count. With at least as many blocks
// as threads, whole blocks go to threads (no synchronisation inside a GEMM, and every thread packs
// its own panels); otherwise blocks run one after another with the GEMM parallel inside. The
// block count is rounded up to a multiple of the thread count so that the threads get equal shares.
#pragma once

#include <algorithm>
#include <cstdint>

#include "tensor/parallel.hpp"

namespace loupe::cpu {

// `count` blocks of `size` units (the last may be short).
struct OutputBlocks {
  int64_t size, count;
  bool parallel;  // blocks run on separate threads, each GEMM on one thread
};

// `total` units (total >= 1) in blocks of at most `max_size` (>= 1), evened out over the threads.
inline OutputBlocks output_blocks(int64_t total, int64_t max_size) {
  const int64_t threads = num_threads();
  int64_t count = (total + max_size - 1) / max_size;
  count = std::min(total, (count + threads - 1) / threads * threads);
  const int64_t even = (total + count - 1) / count;
  count = (total + even - 1) / even;
  return {even, count, threads > 1 && count >= threads};
}

// Calls run(first_block, end_block) over all blocks: in parallel when blocks.parallel, else once.
template <typename Run>
void run_blocks(const OutputBlocks& blocks, Run&& run) {
  if (blocks.parallel) {
    parallel_for(0, blocks.count, 1, run);
  } else {
    run(0, blocks.count);
  }
}

}  // namespace loupe::cpu
