// Small file helpers shared by the tensor file formats (npy.cpp, safetensors.cpp):
//   InputFile            reads exact byte ranges, failing with loupe::Error naming the file
//   write_file_atomically writes to a temporary file beside the target, then renames it over the
//                        target, so a reader never sees a half-written file; on any failure the
//                        temporary is removed and the target is left as it was; a target that
//                        exists but is not a regular file (a device, a folder) is refused
//   tensor_bytes         a tensor's elements in row-major order as one contiguous byte block
// Errors read "<op>: '<path>': <problem>". Files store little-endian data (as numpy and
// safetensors do); the engine's CPU memory is little-endian too (checked below), so no swapping.
// Tests: tests/tensor/test_io.cpp
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "tensor/cpu/loops.hpp"
#include "tensor/tensor.hpp"

namespace loupe::io {

static_assert(std::endian::native == std::endian::little,
              "tensor files are little-endian and are read without byte swapping");

class InputFile {
 public:
  InputFile(const std::string& path, const char* op) : path_(path), op_(op) {
    std::error_code ec;
    LOUPE_CHECK(!std::filesystem::is_directory(path, ec), op_, ": '", path_, "': is a directory");
    in_.open(path, std::ios::binary);
    LOUPE_CHECK(in_.is_open(), op_, ": '", path_, "': cannot open for reading (", std::strerror(errno), ")");
    in_.seekg(0, std::ios::end);
    const std::streamoff end = in_.tellg();
    LOUPE_CHECK(end >= 0, op_, ": '", path_, "': cannot determine the file size");
    size_ = static_cast<uint64_t>(end);
    in_.seekg(0, std::ios::beg);
  }

  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }
  const char* op() const { return op_; }

  // Reads exactly n bytes at `offset`; `what` names the part being read in the error message.
  void read(uint64_t offset, void* out, uint64_t n, const char* what) {
    LOUPE_CHECK(offset <= size_ && n <= size_ - offset, op_, ": '", path_, "': file is truncated: ", what,
                " needs bytes [", offset, ", ", offset + n, ") but the file has ", size_, " bytes");
    if (n == 0) return;
    in_.clear();
    in_.seekg(static_cast<std::streamoff>(offset), std::ios::beg);
    in_.read(static_cast<char*>(out), static_cast<std::streamsize>(n));
    LOUPE_CHECK(in_.good() && static_cast<uint64_t>(in_.gcount()) == n, op_, ": '", path_,
                "': read error in ", what);
  }

  // Throws loupe::Error "<op>: '<path>': <parts...>".
  template <typename... Parts>
  [[noreturn]] void fail(const Parts&... parts) const {
    throw Error(detail::make_message(op_, ": '", path_, "': ", parts...));
  }

 private:
  std::string path_;
  const char* op_;
  std::ifstream in_;
  uint64_t size_ = 0;
};

// Hands body a `write(data, n)` function that appends to a temporary file in the target's folder;
// then flushes it to disk and renames it to `path`. New files get mode 0644.
inline void write_file_atomically(const std::string& path, const char* op,
                                  const std::function<void(const std::function<void(const void*, size_t)>&)>& body) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  LOUPE_CHECK(!target.filename().empty(), op, ": '", path, "': not a file name");
  // Renaming over a device or a folder would replace it (as root, even /dev/full): refuse, as
  // report::write_text_atomic does.
  std::error_code status_error;
  const fs::file_status status = fs::status(target, status_error);
  LOUPE_CHECK(!fs::exists(status) || fs::is_regular_file(status), op, ": '", path,
              "': cannot replace it: it exists and is not a regular file (a folder or a device)");
  std::string temp_name = ".";
  temp_name.append(target.filename().string()).append(".tmp-XXXXXX");
  std::string temp = (target.parent_path() / temp_name).string();
  const int fd = ::mkstemp(temp.data());
  LOUPE_CHECK(fd >= 0, op, ": '", path, "': cannot create a temporary file beside it (", std::strerror(errno), ")");
  bool fd_open = true;
  try {
    body([&](const void* data, size_t n) {
      const char* p = static_cast<const char*>(data);
      while (n > 0) {
        const ssize_t written = ::write(fd, p, n);
        if (written < 0 && errno == EINTR) continue;
        LOUPE_CHECK(written > 0, op, ": '", path, "': write failed (", std::strerror(errno), ")");
        p += written;
        n -= static_cast<size_t>(written);
      }
    });
    LOUPE_CHECK(::fchmod(fd, 0644) == 0 && ::fsync(fd) == 0, op, ": '", path, "': cannot flush (",
                std::strerror(errno), ")");
    fd_open = false;
    LOUPE_CHECK(::close(fd) == 0, op, ": '", path, "': cannot close (", std::strerror(errno), ")");
    std::error_code ec;
    fs::rename(temp, target, ec);
    LOUPE_CHECK(!ec, op, ": '", path, "': cannot replace the file (", ec.message(), ")");
  } catch (...) {
    if (fd_open) ::close(fd);
    std::error_code ignored;
    fs::remove(temp, ignored);
    throw;
  }
}

// The bytes of t's elements in row-major order. A contiguous tensor is returned as a pointer into
// its storage; any other layout is gathered into `buffer` first (works for every dtype: elements
// are copied as opaque bytes).
inline const char* tensor_bytes(const Tensor& t, std::vector<char>& buffer) {
  const size_t element = t.element_size();
  if (t.is_contiguous() || t.numel() == 0) return static_cast<const char*>(t.raw_data());
  buffer.resize(static_cast<size_t>(t.numel()) * element);
  const char* src = static_cast<const char*>(t.raw_data());
  char* dst = buffer.data();
  cpu::for_each_run<2>(t.shape(), {contiguous_strides(t.shape()), t.strides()},
                       [&](int64_t n, const cpu::Offsets<2>& at, const cpu::Offsets<2>& step) {
                         for (int64_t j = 0; j < n; ++j) {
                           std::memcpy(dst + (at[0] + j * step[0]) * static_cast<int64_t>(element),
                                       src + (at[1] + j * step[1]) * static_cast<int64_t>(element), element);
                         }
                       });
  return buffer.data();
}

// Rewrites every byte of a bool tensor's storage as 0 or 1: a file may hold other non-zero bytes,
// and a C++ bool holding anything but 0 or 1 is undefined behaviour.
inline void normalise_bools(const Tensor& t) {
  unsigned char* p = static_cast<unsigned char*>(t.raw_data());
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = p[i] != 0 ? 1 : 0;
}

// a * b into *out, false when it overflows uint64.
inline bool checked_mul(uint64_t a, uint64_t b, uint64_t* out) { return !__builtin_mul_overflow(a, b, out); }

// Whether a tensor of this shape can be laid out: contiguous strides count a zero extent as 1, so
// a shape like (0, 2^40, 2^40) holds no element yet its strides overflow int64 (found by the IDX
// fuzzer: undefined behaviour in contiguous_strides). The product of the extents with zeros as 1,
// times the element size, must fit int64.
inline bool strides_fit(const Shape& shape, uint64_t element_size) {
  uint64_t product = element_size;
  for (int64_t size : shape) {
    if (size < 0 || !checked_mul(product, size > 0 ? static_cast<uint64_t>(size) : 1, &product)) return false;
  }
  return product <= static_cast<uint64_t>(INT64_MAX);
}

}  // namespace loupe::io
