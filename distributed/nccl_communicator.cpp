// NcclCommunicator. See nccl_communicator.hpp.
#include "distributed/nccl_communicator.hpp"

#include <cuda_runtime.h>
#include <nccl.h>

#include <cstdlib>
#include <cstring>

#include "tensor/cuda/runtime.hpp"

namespace loupe::distributed {

namespace {

void check_nccl(ncclResult_t result, const char* call) {
  if (result == ncclSuccess) return;
  throw Error(std::string("distributed: ") + call + " failed: " + ncclGetErrorString(result));
}

ncclDataType_t nccl_type(DType dtype) {
  switch (dtype) {
    case DType::f32: return ncclFloat32;
    case DType::f64: return ncclFloat64;
    case DType::i64: return ncclInt64;
    default: throw Error(std::string("distributed: no NCCL type for ") + dtype_name(dtype));
  }
}

// A collective on the communication stream; wait() orders loupe's stream after it.
class NcclWork : public Work {
 public:
  NcclWork(cudaEvent_t done, cudaStream_t compute) : done_(done), compute_(compute) {}
  bool test() override { return cudaEventQuery(done_) == cudaSuccess; }
  void wait() override { LOUPE_CUDA_CHECK(cudaStreamWaitEvent(compute_, done_, 0)); }

 private:
  cudaEvent_t done_;
  cudaStream_t compute_;
};

class NcclCommunicator : public Communicator {
 public:
  NcclCommunicator(std::shared_ptr<Communicator> host, Device device) : host_(std::move(host)), device_(device) {
    cuda::check_device(device, "distributed (NCCL)");
    cuda::DeviceGuard guard(device_.index);
    ncclUniqueId id;
    std::string mine;
    if (host_->rank() == 0) {
      check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
      mine.assign(reinterpret_cast<const char*>(&id), sizeof(id));
    }
    const std::vector<std::string> all = host_->all_gather_bytes(mine);
    LOUPE_CHECK(all[0].size() == sizeof(id), "distributed: rank 0 sent an NCCL id of ", all[0].size(), " bytes");
    std::memcpy(&id, all[0].data(), sizeof(id));
    check_nccl(ncclCommInitRank(&comm_, host_->size(), id, host_->rank()), "ncclCommInitRank");
    LOUPE_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  }
  ~NcclCommunicator() override {
    cuda::DeviceGuard guard(device_.index);
    for (cudaEvent_t event : events_) cudaEventDestroy(event);
    if (stream_) cudaStreamDestroy(stream_);
    if (comm_) ncclCommDestroy(comm_);
  }
  int rank() const override { return host_->rank(); }
  int size() const override { return host_->size(); }
  std::string backend() const override { return "nccl"; }

  std::unique_ptr<Work> all_reduce_sum_async(Tensor t) override {
    check_collective_tensor(t, "all_reduce_sum");
    if (t.device().is_cpu()) return host_->all_reduce_sum_async(t);
    check_device(t, "all_reduce_sum");
    cuda::DeviceGuard guard(device_.index);
    follow_compute();
    check_nccl(ncclAllReduce(t.raw_data(), t.raw_data(), static_cast<size_t>(t.numel()), nccl_type(t.dtype()), ncclSum,
                             comm_, stream_),
               "ncclAllReduce");
    return std::make_unique<NcclWork>(record_done(), cuda::stream(device_.index));
  }

  void broadcast(Tensor t, int root) override {
    check_collective_tensor(t, "broadcast");
    if (t.device().is_cpu()) return host_->broadcast(t, root);
    check_device(t, "broadcast");
    LOUPE_CHECK(root >= 0 && root < size(), "broadcast: root ", root, " is not a rank of ", size());
    cuda::DeviceGuard guard(device_.index);
    follow_compute();
    check_nccl(ncclBroadcast(t.raw_data(), t.raw_data(), static_cast<size_t>(t.numel()), nccl_type(t.dtype()), root,
                             comm_, stream_),
               "ncclBroadcast");
    NcclWork(record_done(), cuda::stream(device_.index)).wait();
  }

  std::vector<std::string> all_gather_bytes(const std::string& mine) override { return host_->all_gather_bytes(mine); }
  void barrier() override { host_->barrier(); }
  [[noreturn]] void abort(int code) override {
    host_->abort(code);
    std::exit(code);  // not reached: the host communicator ends the process
  }

 private:
  void check_device(const Tensor& t, const char* op) const {
    LOUPE_CHECK(t.device() == device_, op, ": this rank's NCCL communicator serves ", device_.str(), ", the tensor is on ",
                t.device().str());
  }
  // The communication stream waits for what loupe's stream has queued (the gradients it reduces).
  void follow_compute() {
    cudaEvent_t ready = new_event();
    LOUPE_CUDA_CHECK(cudaEventRecord(ready, cuda::stream(device_.index)));
    LOUPE_CUDA_CHECK(cudaStreamWaitEvent(stream_, ready, 0));
  }
  cudaEvent_t record_done() {
    cudaEvent_t done = new_event();
    LOUPE_CUDA_CHECK(cudaEventRecord(done, stream_));
    return done;
  }
  // Events are recycled round-robin: a few hundred collectives are in flight at most.
  cudaEvent_t new_event() {
    if (events_.size() < kEvents) {
      cudaEvent_t event;
      LOUPE_CUDA_CHECK(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
      events_.push_back(event);
      return event;
    }
    cudaEvent_t event = events_[next_event_];
    next_event_ = (next_event_ + 1) % kEvents;
    return event;
  }

  static constexpr size_t kEvents = 1024;
  std::shared_ptr<Communicator> host_;
  Device device_;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  std::vector<cudaEvent_t> events_;
  size_t next_event_ = 0;
};

}  // namespace

std::shared_ptr<Communicator> make_nccl_communicator(std::shared_ptr<Communicator> host, Device device) {
  return std::make_shared<NcclCommunicator>(std::move(host), device);
}

}  // namespace loupe::distributed
