// safetensors reading and writing. See safetensors.hpp.
// Tests: tests/tensor/test_io.cpp
#include "tensor/io/safetensors.hpp"

#include <algorithm>
#include <vector>

#include "tensor/io/file_util.hpp"
#include "tensor/io/json.hpp"
#include "tensor/io/limits.hpp"

namespace loupe {

namespace {

// The reference implementation refuses headers above 100 MB; so do we.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
constexpr const char* kMetadataKey = "__metadata__";

struct SafetensorsDtype {
  const char* name;
  DType dtype;
};
constexpr SafetensorsDtype kDtypes[] = {{"F32", DType::f32}, {"F64", DType::f64}, {"I64", DType::i64},
                                        {"BOOL", DType::b8}, {"F16", DType::f16}, {"BF16", DType::bf16}};

// One tensor's header entry, checked against itself (not yet against the file).
struct Entry {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin, end;  // byte range in the data buffer
};

struct Header {
  std::vector<Entry> entries;
  std::map<std::string, std::string> metadata;
  uint64_t buffer_start = 0;
};

Entry parse_entry(const std::string& name, const json::Value& v, io::InputFile& file) {
  if (v.kind != json::Value::Kind::object) file.fail("tensor '", name, "': header entry is not an object");
  Entry e{name, DType::f32, {}, 0, 0};

  const json::Value* dtype = v.find("dtype");
  if (!dtype || dtype->kind != json::Value::Kind::string) file.fail("tensor '", name, "': missing string 'dtype'");
  bool known = false;
  for (const SafetensorsDtype& d : kDtypes) {
    if (dtype->text == d.name) {
      e.dtype = d.dtype;
      known = true;
    }
  }
  if (!known) file.fail("tensor '", name, "': unsupported dtype '", dtype->text, "' (F32, F64, I64, BOOL, F16, BF16)");

  const json::Value* shape = v.find("shape");
  if (!shape || shape->kind != json::Value::Kind::array) file.fail("tensor '", name, "': missing array 'shape'");
  uint64_t nbytes = dtype_size(e.dtype);
  for (const json::Value& dim : shape->items) {
    uint64_t size = 0;
    if (!dim.as_uint64(&size) || size > static_cast<uint64_t>(INT64_MAX)) {
      file.fail("tensor '", name, "': shape entries must be non-negative integers");
    }
    if (!io::checked_mul(nbytes, size, &nbytes)) file.fail("tensor '", name, "': shape overflows");
    e.shape.push_back(static_cast<int64_t>(size));
  }
  if (!io::strides_fit(e.shape, dtype_size(e.dtype))) file.fail("tensor '", name, "': shape ", shape_str(e.shape), " overflows");

  const json::Value* offsets = v.find("data_offsets");
  if (!offsets || offsets->kind != json::Value::Kind::array || offsets->items.size() != 2 ||
      !offsets->items[0].as_uint64(&e.begin) || !offsets->items[1].as_uint64(&e.end)) {
    file.fail("tensor '", name, "': 'data_offsets' must be two non-negative integers [begin, end]");
  }
  if (e.end < e.begin) file.fail("tensor '", name, "': data_offsets [", e.begin, ", ", e.end, "] end before they begin");
  if (e.end - e.begin != nbytes) {
    file.fail("tensor '", name, "': shape ", shape_str(e.shape), " of ", dtype_name(e.dtype), " needs ", nbytes,
              " bytes but data_offsets [", e.begin, ", ", e.end, "] hold ", e.end - e.begin);
  }
  return e;
}

Header read_header(io::InputFile& file) {
  unsigned char length_bytes[8];
  file.read(0, length_bytes, 8, "the header length");
  uint64_t length = 0;
  for (int i = 8; i-- > 0;) length = (length << 8) | length_bytes[i];
  if (length > kMaxHeaderBytes) file.fail("header length ", length, " is larger than the 100 MB limit");
  if (length > file.size() - 8) {
    file.fail("file is truncated: header length ", length, " but only ", file.size() - 8, " bytes follow it");
  }
  std::string text(length, '\0');
  file.read(8, text.data(), length, "the header");
  if (text.empty() || text[0] != '{') file.fail("header does not start with '{'");

  json::Value root;
  try {
    root = json::parse(text);
  } catch (const Error& e) {
    file.fail("bad JSON header: ", e.what());
  }
  if (root.kind != json::Value::Kind::object) file.fail("header is not a JSON object");

  Header header;
  header.buffer_start = 8 + length;
  for (const auto& [name, value] : root.members) {
    if (name == kMetadataKey) {
      if (value.kind != json::Value::Kind::object) file.fail("'__metadata__' is not an object");
      for (const auto& [key, entry] : value.members) {
        if (entry.kind != json::Value::Kind::string) file.fail("metadata '", key, "' is not a string");
        header.metadata[key] = entry.text;
      }
      continue;
    }
    header.entries.push_back(parse_entry(name, value, file));
  }

  // The tensors must tile the buffer: sorted by offset, each starts where the previous ended and
  // the last ends at the end of the file. This rules out overlaps, gaps and trailing bytes.
  std::vector<const Entry*> order;
  for (const Entry& e : header.entries) order.push_back(&e);
  std::sort(order.begin(), order.end(), [](const Entry* a, const Entry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  const uint64_t buffer_size = file.size() - header.buffer_start;
  uint64_t expected = 0;
  for (const Entry* e : order) {
    if (e->begin != expected) {
      file.fail("tensor '", e->name, "': data_offsets [", e->begin, ", ", e->end, "] ",
                e->begin < expected ? "overlap the previous tensor" : "leave a gap after the previous tensor",
                " (expected it to begin at ", expected, ")");
    }
    if (e->end > buffer_size) {
      file.fail("file is truncated: tensor '", e->name, "' ends at buffer byte ", e->end, " but the data buffer has ",
                buffer_size, " bytes");
    }
    expected = e->end;
  }
  if (expected != buffer_size) {
    file.fail("data buffer has ", buffer_size, " bytes but the tensors cover ", expected);
  }
  return header;
}

const char* safetensors_dtype(DType dtype) {
  for (const SafetensorsDtype& d : kDtypes) {
    if (d.dtype == dtype) return d.name;
  }
  return nullptr;
}

std::map<std::string, Tensor> read_tensor_data(io::InputFile& file, const Header& header) {
  // The header tiles the file (checked), so these sizes are real bytes; the limit still bounds
  // what one file may allocate.
  for (const Entry& e : header.entries) {
    io::check_declared_bytes(file.op(), file.path(), "tensor '" + e.name + "' of shape " + shape_str(e.shape),
                             e.end - e.begin);
  }
  std::map<std::string, Tensor> tensors;
  for (const Entry& e : header.entries) {
    Tensor t = Tensor::empty(e.shape, e.dtype);
    file.read(header.buffer_start + e.begin, t.raw_data(), e.end - e.begin, "tensor data");
    if (e.dtype == DType::b8) io::normalise_bools(t);
    tensors.emplace(e.name, std::move(t));
  }
  return tensors;
}

}  // namespace

std::map<std::string, Tensor> load_safetensors(const std::string& path) {
  io::InputFile file(path, "load_safetensors");
  return read_tensor_data(file, read_header(file));
}

std::map<std::string, std::string> load_safetensors_metadata(const std::string& path) {
  io::InputFile file(path, "load_safetensors_metadata");
  return read_header(file).metadata;
}

struct SafetensorsReader::State {
  io::InputFile file;
  Header header;
  explicit State(const std::string& path) : file(path, "load_safetensors"), header(read_header(file)) {}
};

SafetensorsReader::SafetensorsReader(const std::string& path) : state_(std::make_unique<State>(path)) {}
SafetensorsReader::~SafetensorsReader() = default;
const std::map<std::string, std::string>& SafetensorsReader::metadata() const { return state_->header.metadata; }
std::map<std::string, Tensor> SafetensorsReader::read_tensors() { return read_tensor_data(state_->file, state_->header); }

void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  // Validate everything before the file is created.
  std::vector<std::pair<std::string, Tensor>> order(tensors.begin(), tensors.end());
  for (const auto& [name, t] : order) {
    LOUPE_CHECK(name != kMetadataKey, "save_safetensors: '", path, "': the tensor name '", kMetadataKey,
                "' is reserved");
    LOUPE_CHECK(t.defined(), "save_safetensors: '", path, "': tensor '", name, "' is undefined");
    LOUPE_CHECK(t.device().is_cpu(), "save_safetensors: '", path, "': tensor '", name, "' is on ",
                t.device().str(), "; copy it to the CPU first");
    LOUPE_CHECK(safetensors_dtype(t.dtype()) != nullptr, "save_safetensors: '", path, "': tensor '", name,
                "' has unsupported dtype ", t.dtype());
  }
  std::stable_sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
    return a.second.element_size() > b.second.element_size();
  });

  std::string header = "{";
  if (!metadata.empty()) {
    header += json::quote(kMetadataKey) + ":{";
    bool first = true;
    for (const auto& [key, value] : metadata) {
      if (!first) header += ",";
      header += json::quote(key) + ":" + json::quote(value);
      first = false;
    }
    header += "}";
  }
  uint64_t offset = 0;
  for (const auto& [name, t] : order) {
    const uint64_t nbytes = static_cast<uint64_t>(t.numel()) * t.element_size();
    if (header.size() > 1) header += ",";
    header += json::quote(name) + ":{\"dtype\":\"" + safetensors_dtype(t.dtype()) + "\",\"shape\":[";
    for (size_t i = 0; i < t.shape().size(); ++i) {
      if (i > 0) header += ",";
      header += std::to_string(t.shape()[i]);
    }
    header += "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(offset + nbytes) + "]}";
    offset += nbytes;
  }
  header += "}";
  header.append((8 - header.size() % 8) % 8, ' ');  // the data buffer starts 8-byte aligned

  unsigned char length[8];
  for (int i = 0; i < 8; ++i) length[i] = static_cast<unsigned char>((header.size() >> (8 * i)) & 0xFF);

  io::write_file_atomically(path, "save_safetensors", [&](const auto& write) {
    write(length, 8);
    write(header.data(), header.size());
    std::vector<char> buffer;
    for (const auto& [name, t] : order) {
      write(io::tensor_bytes(t, buffer), static_cast<size_t>(t.numel()) * t.element_size());
    }
  });
}

}  // namespace loupe
