// bench_allreduce: how long the MPI all-reduce of one float32 buffer takes between the ranks of
//   mpirun -np N build/benchmarks/bench_allreduce [MB ...]      (default: 0.004 0.25 2.8 4 16)
// For each size: the median of 30 timed all-reduces (after 5 untimed), the algorithm bandwidth
// (bytes / time) and the bus bandwidth 2 (N - 1) / N x bytes / time (what a ring moves per rank,
// the figure NCCL's tests report). Rank 0 prints one line per size.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "distributed/communicator.hpp"
#include "tensor/ops.hpp"

using namespace loupe;

int main(int argc, char** argv) {
  try {
    auto comm = distributed::world();
    std::vector<double> sizes_mb = {0.004, 0.25, 2.8, 4.0, 16.0};
    if (argc > 1) {
      sizes_mb.clear();
      for (int i = 1; i < argc; ++i) sizes_mb.push_back(std::atof(argv[i]));
    }
    const double n = comm->size();
    if (comm->rank() == 0) std::printf("ranks %d (%s)\n", comm->size(), comm->backend().c_str());
    for (double mb : sizes_mb) {
      const int64_t elements = std::max<int64_t>(1, static_cast<int64_t>(mb * 1e6 / 4));
      Tensor buffer = ops::add(zeros({elements}), 1.0);
      std::vector<double> ms;
      for (int i = 0; i < 35; ++i) {
        comm->barrier();
        const auto start = std::chrono::steady_clock::now();
        comm->all_reduce_sum(buffer);
        const double t = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
        if (i >= 5) ms.push_back(t);
      }
      std::sort(ms.begin(), ms.end());
      const double median = ms[ms.size() / 2], bytes = static_cast<double>(elements) * 4;
      if (comm->rank() == 0) {
        std::printf("%10.3f MB  median %8.3f ms  (min %7.3f)  algorithm %6.2f GB/s  bus %6.2f GB/s\n", bytes / 1e6, median,
                    ms.front(), bytes / median / 1e6, 2 * (n - 1) / n * bytes / median / 1e6);
      }
    }
    return 0;
  } catch (const Error& error) {
    std::fprintf(stderr, "bench_allreduce: %s\n", error.what());
    return 1;
  }
}
