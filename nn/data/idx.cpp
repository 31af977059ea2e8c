// IDX reader. See idx.hpp.
#include "nn/data/idx.hpp"

#include <cstring>

#include "nn/data/gzip.hpp"
#include "tensor/dispatch.hpp"
#include "tensor/io/file_util.hpp"
#include "tensor/io/limits.hpp"

namespace loupe::nn {

namespace {
uint32_t read_be32(const uint8_t* p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]);
}

// Element type code -> size in bytes (0x08 u8, 0x09 i8, 0x0B i16, 0x0C i32, 0x0D f32, 0x0E f64).
size_t idx_element_size(uint8_t code, const std::string& name) {
  switch (code) {
    case 0x08: case 0x09: return 1;
    case 0x0B: return 2;
    case 0x0C: case 0x0D: return 4;
    case 0x0E: return 8;
    default: break;
  }
  throw Error(detail::make_message("load_idx: '", name, "' has unknown element type 0x", std::hex, int(code)));
}

double read_element(const uint8_t* p, uint8_t code) {
  switch (code) {
    case 0x08: return p[0];
    case 0x09: return static_cast<int8_t>(p[0]);
    case 0x0B: return static_cast<int16_t>(uint16_t(p[0]) << 8 | p[1]);
    case 0x0C: return static_cast<int32_t>(read_be32(p));
    case 0x0D: {
      const uint32_t bits = read_be32(p);
      float f;
      std::memcpy(&f, &bits, 4);
      return f;
    }
    default: {
      uint64_t bits = 0;
      for (int i = 0; i < 8; ++i) bits = bits << 8 | p[i];
      double d;
      std::memcpy(&d, &bits, 8);
      return d;
    }
  }
}
}  // namespace

Tensor parse_idx(const std::vector<uint8_t>& bytes, const std::string& name, DType dtype) {
  LOUPE_CHECK(bytes.size() >= 4 && bytes[0] == 0 && bytes[1] == 0, "load_idx: '", name, "' is not an IDX file");
  const uint8_t code = bytes[2];
  const size_t rank = bytes[3];
  const size_t element = idx_element_size(code, name);
  LOUPE_CHECK(bytes.size() >= 4 + 4 * rank, "load_idx: '", name, "' is truncated in its header");
  Shape shape(rank);
  // Sizes are multiplied with overflow checks: 255 dimensions of up to 2^32 - 1 each are possible.
  uint64_t count = 1, data_bytes = 0, tensor_bytes = 0;
  for (size_t d = 0; d < rank; ++d) {
    shape[d] = read_be32(&bytes[4 + 4 * d]);
    LOUPE_CHECK(io::checked_mul(count, static_cast<uint64_t>(shape[d]), &count), "load_idx: '", name,
                "': shape overflows");
  }
  LOUPE_CHECK(io::checked_mul(count, element, &data_bytes) && io::checked_mul(count, dtype_size(dtype), &tensor_bytes) &&
                  io::strides_fit(shape, dtype_size(dtype)),
              "load_idx: '", name, "': shape ", shape_str(shape), " overflows");
  const size_t header = 4 + 4 * rank;
  LOUPE_CHECK(bytes.size() - header == data_bytes, "load_idx: '", name, "' holds ", bytes.size() - header,
              " data bytes, shape ", shape_str(shape), " needs ", data_bytes);
  io::check_declared_bytes("load_idx", name, "shape " + shape_str(shape) + " as " + dtype_name(dtype), tensor_bytes);
  Tensor out = Tensor::empty(shape, dtype);
  dispatch_numeric(dtype, "load_idx", [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* p = out.data<T>();
    const uint8_t* src = bytes.data() + header;
    if (code == 0x08) {
      for (size_t i = 0; i < count; ++i) p[i] = static_cast<T>(src[i]);
    } else {
      for (size_t i = 0; i < count; ++i) p[i] = static_cast<T>(read_element(src + i * element, code));
    }
  });
  return out;
}

Tensor load_idx(const std::string& path, DType dtype) {
  const bool compressed = path.size() > 3 && path.compare(path.size() - 3, 3, ".gz") == 0;
  return parse_idx(compressed ? read_gzip_file(path) : read_file_bytes(path), path, dtype);
}

}  // namespace loupe::nn
