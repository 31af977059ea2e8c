// .npy reading and writing. See npy.hpp.
//
// Layout of a file:
//   "\x93NUMPY"  major  minor  header_len (uint16 LE for 1.x, uint32 LE for 2.x/3.x)
//   header: a Python dict literal, e.g. {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
//   data: numel * itemsize bytes
// Tests: tests/tensor/test_io.cpp
#include "tensor/io/npy.hpp"

#include <cctype>
#include <cstring>
#include <optional>

#include "tensor/io/file_util.hpp"
#include "tensor/io/limits.hpp"
#include "tensor/ops/copy.hpp"

namespace loupe {

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicSize = 6;
constexpr uint32_t kMaxHeaderBytes = 1 << 20;  // numpy's own headers are a few hundred bytes
constexpr size_t kAlignment = 64;              // data starts on a 64-byte boundary

struct NpyDtype {
  const char* descr;
  DType dtype;
};
constexpr NpyDtype kDtypes[] = {
    {"<f4", DType::f32}, {"<f8", DType::f64}, {"<i8", DType::i64}, {"|b1", DType::b8}};

struct NpyHeader {
  DType dtype = DType::f32;
  bool fortran_order = false;
  Shape shape;
};

// Parses the header dict. It is a Python literal, but numpy only ever writes three keys with a
// string, a bool and a tuple of ints, so that is all this accepts.
class HeaderParser {
 public:
  HeaderParser(const std::string& text, io::InputFile& file) : text_(text), file_(file) {}

  NpyHeader parse() {
    NpyHeader header;
    bool seen_descr = false, seen_order = false, seen_shape = false;
    expect('{');
    while (true) {
      skip_space();
      if (peek() == '}') break;
      const std::string key = parse_string();
      expect(':');
      skip_space();
      if (key == "descr") {
        check_new(seen_descr, key);
        header.dtype = parse_descr();
      } else if (key == "fortran_order") {
        check_new(seen_order, key);
        header.fortran_order = parse_bool();
      } else if (key == "shape") {
        check_new(seen_shape, key);
        header.shape = parse_shape();
      } else {
        file_.fail("header has an unexpected key '", key, "' (expected descr, fortran_order, shape)");
      }
      skip_space();
      if (peek() == ',') {
        ++pos_;
      } else if (peek() != '}') {
        fail_here("expected ',' or '}'");
      }
    }
    ++pos_;
    skip_space();
    if (pos_ != text_.size()) fail_here("unexpected text after the header dict");
    if (!seen_descr || !seen_order || !seen_shape) {
      file_.fail("header lacks ", !seen_descr ? "'descr'" : !seen_order ? "'fortran_order'" : "'shape'");
    }
    return header;
  }

 private:
  char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }
  void skip_space() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }
  [[noreturn]] void fail_here(const char* what) const {
    file_.fail("malformed header (", what, " at character ", pos_, "): ", text_);
  }
  void expect(char c) {
    skip_space();
    if (peek() != c) fail_here((std::string("expected '") + c + "'").c_str());
    ++pos_;
  }
  void check_new(bool& seen, const std::string& key) {
    if (seen) file_.fail("header repeats the key '", key, "'");
    seen = true;
  }

  std::string parse_string() {
    skip_space();
    const char quote = peek();
    if (quote != '\'' && quote != '"') fail_here("expected a quoted string");
    const size_t end = text_.find(quote, pos_ + 1);
    if (end == std::string::npos) fail_here("unterminated string");
    std::string s = text_.substr(pos_ + 1, end - pos_ - 1);
    pos_ = end + 1;
    return s;
  }

  DType parse_descr() {
    if (peek() == '[') file_.fail("structured dtypes are not supported");
    const std::string descr = parse_string();
    for (const NpyDtype& d : kDtypes) {
      if (descr == d.descr) return d.dtype;
    }
    if (!descr.empty() && descr[0] == '>') {
      file_.fail("big-endian dtype '", descr, "' is not supported (supported: '<f4', '<f8', '<i8', '|b1')");
    }
    file_.fail("unsupported dtype '", descr, "' (supported: '<f4', '<f8', '<i8', '|b1')");
  }

  bool parse_bool() {
    if (text_.compare(pos_, 4, "True") == 0) {
      pos_ += 4;
      return true;
    }
    if (text_.compare(pos_, 5, "False") == 0) {
      pos_ += 5;
      return false;
    }
    fail_here("expected True or False");
  }

  // "()", "(3,)", "(2, 3)"; Python 2 era files may write "3L".
  Shape parse_shape() {
    Shape shape;
    expect('(');
    while (true) {
      skip_space();
      if (peek() == ')') break;
      if (!std::isdigit(static_cast<unsigned char>(peek()))) fail_here("expected a non-negative integer in the shape");
      int64_t value = 0;
      while (std::isdigit(static_cast<unsigned char>(peek()))) {
        const int digit = text_[pos_++] - '0';
        if (value > (INT64_MAX - digit) / 10) fail_here("shape entry is too large");
        value = value * 10 + digit;
      }
      if (peek() == 'L') ++pos_;
      shape.push_back(value);
      skip_space();
      if (peek() == ',') {
        ++pos_;
      } else if (peek() != ')') {
        fail_here("expected ',' or ')' in the shape");
      }
    }
    ++pos_;
    return shape;
  }

  const std::string& text_;
  io::InputFile& file_;
  size_t pos_ = 0;
};

const char* npy_descr(DType dtype) {
  for (const NpyDtype& d : kDtypes) {
    if (d.dtype == dtype) return d.descr;
  }
  return nullptr;
}

uint32_t read_le(const unsigned char* p, int bytes) {
  uint32_t v = 0;
  for (int i = bytes; i-- > 0;) v = (v << 8) | p[i];
  return v;
}

}  // namespace

Tensor load_npy(const std::string& path) {
  io::InputFile file(path, "load_npy");
  unsigned char preamble[12];
  file.read(0, preamble, 10, "the magic string and header length");
  if (std::memcmp(preamble, kMagic, kMagicSize) != 0) file.fail("not a .npy file (bad magic string)");
  const int major = preamble[6], minor = preamble[7];
  if (!((major == 1 || major == 2 || major == 3) && minor == 0)) {
    file.fail("unsupported .npy format version ", major, ".", minor, " (supported: 1.0, 2.0, 3.0)");
  }
  uint64_t header_start = 10;
  uint32_t header_len = read_le(preamble + 8, 2);
  if (major >= 2) {
    file.read(10, preamble + 10, 2, "the header length");
    header_len = read_le(preamble + 8, 4);
    header_start = 12;
  }
  if (header_len > kMaxHeaderBytes) file.fail("header length ", header_len, " is implausibly large");
  std::string text(header_len, '\0');
  file.read(header_start, text.data(), header_len, "the header");
  const NpyHeader header = HeaderParser(text, file).parse();

  // Every size is checked before anything is allocated, so a corrupt shape cannot ask for
  // exabytes.
  uint64_t numel = 1, nbytes = 0;
  for (int64_t size : header.shape) {
    if (!io::checked_mul(numel, static_cast<uint64_t>(size), &numel)) file.fail("shape overflows");
  }
  if (!io::checked_mul(numel, dtype_size(header.dtype), &nbytes)) file.fail("shape overflows");
  if (!io::strides_fit(header.shape, dtype_size(header.dtype))) file.fail("shape ", shape_str(header.shape), " overflows");
  const uint64_t data_start = header_start + header_len;
  const uint64_t available = file.size() - data_start;
  if (available < nbytes) {
    file.fail("file is truncated: shape ", shape_str(header.shape), " of ", dtype_name(header.dtype), " needs ",
              nbytes, " data bytes, the file has ", available);
  }
  if (available > nbytes) {
    file.fail(available - nbytes, " unexpected bytes after the data of shape ", shape_str(header.shape));
  }
  // The file really holds that many bytes; the limit still bounds what one file may allocate.
  io::check_declared_bytes("load_npy", path, "shape " + shape_str(header.shape) + " of " + dtype_name(header.dtype),
                           nbytes);

  // Fortran order: the bytes are the C-order array of the reversed shape, i.e. the transpose.
  Shape stored = header.shape;
  if (header.fortran_order) std::reverse(stored.begin(), stored.end());
  Tensor t = Tensor::empty(stored, header.dtype);
  file.read(data_start, t.raw_data(), nbytes, "the data");
  if (header.dtype == DType::b8) io::normalise_bools(t);
  if (!header.fortran_order) return t;
  Strides strides = t.strides();
  std::reverse(strides.begin(), strides.end());
  return ops::contiguous(Tensor::view_of(t.storage(), 0, header.shape, strides, header.dtype));
}

void save_npy(const std::string& path, const Tensor& t) {
  LOUPE_CHECK(t.defined(), "save_npy: '", path, "': undefined tensor");
  LOUPE_CHECK(t.device().is_cpu(), "save_npy: '", path, "': tensor is on ", t.device().str(),
              "; copy it to the CPU first");
  const char* descr = npy_descr(t.dtype());
  LOUPE_CHECK(descr != nullptr, "save_npy: '", path, "': dtype ", t.dtype(),
              " is not supported (float32, float64, int64, bool)");

  std::string header = std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': (";
  for (size_t i = 0; i < t.shape().size(); ++i) {
    header += std::to_string(t.shape()[i]) + (t.shape().size() == 1 ? "," : i + 1 < t.shape().size() ? ", " : "");
  }
  header += "), }";
  // Pad with spaces so magic + version + length + header + '\n' is a multiple of 64 bytes. The
  // length field of version 1.0 is 16 bits; longer headers (thousands of dims) need 2.0.
  auto padded_length = [&](size_t preamble) {
    const size_t total = preamble + header.size() + 1;
    return header.size() + 1 + (kAlignment - total % kAlignment) % kAlignment;
  };
  const size_t preamble = padded_length(10) <= 65535 ? 10 : 12;
  header.append(padded_length(preamble) - header.size() - 1, ' ');
  header += '\n';

  std::string head(kMagic, kMagicSize);
  head += static_cast<char>(preamble == 10 ? 1 : 2);
  head += '\0';
  const uint32_t len = static_cast<uint32_t>(header.size());
  for (size_t i = 0; i < preamble - 8; ++i) head += static_cast<char>((len >> (8 * i)) & 0xFF);
  head += header;

  std::vector<char> buffer;
  const char* data = io::tensor_bytes(t, buffer);
  const size_t nbytes = static_cast<size_t>(t.numel()) * t.element_size();
  io::write_file_atomically(path, "save_npy", [&](const auto& write) {
    write(head.data(), head.size());
    write(data, nbytes);
  });
}

}  // namespace loupe
