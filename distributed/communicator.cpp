// Communicators. See communicator.hpp.
#include "distributed/communicator.hpp"

#include <algorithm>
#include <cstdlib>
#include <mutex>

#include "distributed/config.hpp"
#include "tensor/parallel.hpp"
#ifdef LOUPE_WITH_MPI
#include "distributed/mpi_communicator.hpp"
#endif
#ifdef LOUPE_WITH_NCCL
#include "distributed/nccl_communicator.hpp"
#endif

namespace loupe::distributed {

namespace {

int env_int(const char* name, int fallback) {
  const char* text = std::getenv(name);
  if (!text || !*text) return fallback;
  char* end = nullptr;
  const long value = std::strtol(text, &end, 10);
  return (*end == '\0' && value >= 0) ? static_cast<int>(value) : fallback;
}

}  // namespace

void Communicator::abort(int code) { std::exit(code); }

void check_collective_tensor(const Tensor& t, const char* op) {
  LOUPE_CHECK(t.defined(), op, ": the tensor is undefined");
  LOUPE_CHECK(t.is_contiguous(), op, ": the tensor ", shape_str(t.shape()), " must be contiguous");
  LOUPE_CHECK(t.dtype() == DType::f32 || t.dtype() == DType::f64 || t.dtype() == DType::i64, op,
              ": dtype ", dtype_name(t.dtype()), " is not supported (float32, float64, int64)");
}

std::unique_ptr<Work> LocalCommunicator::all_reduce_sum_async(Tensor t) {
  check_collective_tensor(t, "all_reduce_sum");
  return std::make_unique<DoneWork>();
}

void LocalCommunicator::broadcast(Tensor t, int root) {
  check_collective_tensor(t, "broadcast");
  LOUPE_CHECK(root == 0, "broadcast: root ", root, " is not a rank of a 1-process group");
}

bool launched_by_mpi() { return launched_size() > 1 || std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMI_SIZE"); }

int launched_size() {
  int size = env_int("OMPI_COMM_WORLD_SIZE", -1);
  if (size < 0) size = env_int("PMI_SIZE", -1);
  return size < 1 ? 1 : size;
}

int local_rank() {
  int rank = env_int("OMPI_COMM_WORLD_LOCAL_RANK", -1);
  if (rank < 0) rank = env_int("MPI_LOCALRANKID", -1);
  return rank < 0 ? 0 : rank;
}

void share_cores_between_ranks() {
  const int ranks_here = env_int("OMPI_COMM_WORLD_LOCAL_SIZE", env_int("MPI_LOCALNRANKS", 1));
  if (std::getenv("LOUPE_NUM_THREADS") || ranks_here <= 1) return;
  set_num_threads(std::max(1, num_threads() / ranks_here));
}

bool mpi_available() {
#ifdef LOUPE_WITH_MPI
  return true;
#else
  return false;
#endif
}

bool nccl_available() {
#ifdef LOUPE_WITH_NCCL
  return true;
#else
  return false;
#endif
}

std::shared_ptr<Communicator> world(Device device) {
  static std::mutex mutex;
  static std::shared_ptr<Communicator> cpu_world, gpu_world;
  std::lock_guard<std::mutex> lock(mutex);
  const bool gpu = device.is_cuda();
  if (!cpu_world) {
    if (!launched_by_mpi()) {
      cpu_world = std::make_shared<LocalCommunicator>();
    } else {
#ifdef LOUPE_WITH_MPI
      cpu_world = make_mpi_communicator();
#else
      LOUPE_CHECK(launched_size() == 1, "distributed: started by mpirun with ", launched_size(),
                  " processes, but this loupe was built without MPI (install libopenmpi-dev and rebuild: ",
                  "meson finds it with pkg-config)");
      cpu_world = std::make_shared<LocalCommunicator>();
#endif
    }
  }
  if (!gpu || cpu_world->size() == 1) return cpu_world;
  if (!gpu_world) {
#ifdef LOUPE_WITH_NCCL
    gpu_world = make_nccl_communicator(cpu_world, device);
#else
    throw Error("distributed: " + std::to_string(cpu_world->size()) + " processes on " + device.str() +
                " need NCCL, and this loupe was built without it (a CUDA toolkit with nccl.h and libnccl)");
#endif
  }
  return gpu_world;
}

}  // namespace loupe::distributed
