// mpi_check: the communicator layer over real processes, run by tests/distributed/test_mpi.cpp as
//   mpirun -np N build/tests/distributed/mpi_check
// Each rank checks MPI all-reduce (float32, float64, int64; several non-blocking ones in flight at
// once), broadcast, all-gather of bytes and a GradientReducer over a small model whose shards give
// the whole batch's gradient. Prints one line per rank and exits 0 when every check passed.
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "autograd/autograd.hpp"
#include "distributed/gradient_reducer.hpp"
#include "tensor/ops.hpp"

using namespace loupe;

namespace {

int failures = 0, checks = 0;

void expect(bool ok, const std::string& what, int rank) {
  ++checks;
  if (!ok) {
    ++failures;
    std::printf("mpi_check: rank %d: FAILED: %s\n", rank, what.c_str());
  }
}

double max_diff(const Tensor& a, const Tensor& b) {
  const Tensor d = ops::abs(ops::sub(ops::to_dtype(a, DType::f64), ops::to_dtype(b, DType::f64)));
  return ops::amax(ops::reshape(d, {-1}), {0}).item();
}

// Uniform values in [-1, 1) from a seed, the same on every rank.
Tensor sample(const Shape& shape, uint64_t seed) {
  Generator generator(seed);
  return uniform(shape, -1.0, 1.0, DType::f64, &generator);
}

}  // namespace

int main() {
  try {
    auto comm = distributed::world();
    const int rank = comm->rank(), size = comm->size();
    expect(size >= 2, "started with " + std::to_string(size) + " rank(s); run under mpirun -np 2 or more", rank);
    expect(comm->backend() == "mpi", "backend is " + comm->backend(), rank);
    const double n = size, rank_sum = n * (n - 1) / 2;

    Tensor a = from_values(std::vector<double>{static_cast<double>(rank), 1.0}, {2}, DType::f32);
    Tensor b = from_values(std::vector<double>{rank + 0.25}, {1}, DType::f64);
    Tensor c = from_values(std::vector<int64_t>{int64_t{1} << 40, rank}, {2});
    comm->all_reduce_sum(a);
    comm->all_reduce_sum(b);
    comm->all_reduce_sum(c);
    expect(a.data<float>()[0] == rank_sum && a.data<float>()[1] == n, "float32 all-reduce", rank);
    expect(b.data<double>()[0] == rank_sum + 0.25 * n, "float64 all-reduce", rank);
    expect(c.data<int64_t>()[0] == size * (int64_t{1} << 40) && c.data<int64_t>()[1] == rank_sum, "int64 all-reduce", rank);

    // Buckets: several non-blocking all-reduces in flight, waited for in reverse.
    std::vector<Tensor> buckets;
    std::vector<std::unique_ptr<distributed::Work>> works;
    for (int k = 0; k < 4; ++k) {
      buckets.push_back(ops::add(zeros({1000 + k}, DType::f32), static_cast<double>(rank + k)));
      works.push_back(comm->all_reduce_sum_async(buckets.back()));
    }
    for (int k = 3; k >= 0; --k) works[k]->wait();
    for (int k = 0; k < 4; ++k) {
      const double want = rank_sum + n * k;
      expect(ops::amax(ops::abs(ops::sub(buckets[k], want)), {0}).item() == 0.0, "bucket " + std::to_string(k), rank);
    }

    Tensor d = from_values(std::vector<double>{static_cast<double>(rank), 7.0}, {2}, DType::f64);
    comm->broadcast(d, size - 1);
    expect(d.data<double>()[0] == size - 1 && d.data<double>()[1] == 7.0, "broadcast from the last rank", rank);

    const auto gathered = comm->all_gather_bytes(std::string(static_cast<size_t>(rank), 'x'));
    bool gathered_ok = static_cast<int>(gathered.size()) == size;
    for (int r = 0; gathered_ok && r < size; ++r) gathered_ok = gathered[r] == std::string(static_cast<size_t>(r), 'x');
    expect(gathered_ok, "all-gather of bytes", rank);

    // A GradientReducer over processes: shards of a batch give the whole batch's gradient.
    const Tensor batch = sample({9, 4}, 3);
    auto make_parameters = [] {
      std::vector<Tensor> p = {sample({5, 4}, 10), sample({5}, 11), sample({2, 5}, 12), sample({2}, 13)};
      for (Tensor& t : p) t.set_requires_grad();
      return p;
    };
    auto loss_of = [](const std::vector<Tensor>& p, const Tensor& x, double share) {
      Tensor h = tanh(add(matmul(x, transpose(p[0], 0, 1)), p[1]));
      return mul(mean(square(add(matmul(h, transpose(p[2], 0, 1)), p[3]))), share);
    };
    std::vector<Tensor> reference = make_parameters(), shared = make_parameters();
    backward(loss_of(reference, batch, 1.0));
    distributed::GradientReducer reducer(shared, comm, 64);
    const int64_t rows = batch.size(0), lo = rows * rank / size, hi = rows * (rank + 1) / size;
    reducer.backward(loss_of(shared, ops::narrow(batch, 0, lo, hi - lo), static_cast<double>(hi - lo) / rows));
    for (size_t k = 0; k < shared.size(); ++k) {
      expect(max_diff(shared[k].grad(), reference[k].grad()) < 1e-12, "reduced gradient of parameter " + std::to_string(k), rank);
    }
    expect(reducer.bucket_count() >= 3 && reducer.buckets_started_during_backward() >= reducer.bucket_count() - 1,
           "buckets started during backward", rank);

    comm->barrier();
    std::printf("mpi_check: rank %d of %d: %d checks, %d failed\n", rank, size, checks, failures);
    std::fflush(stdout);
    return failures == 0 ? 0 : 1;
  } catch (const Error& error) {
    std::printf("mpi_check: error: %s\n", error.what());
    return 1;
  }
}
