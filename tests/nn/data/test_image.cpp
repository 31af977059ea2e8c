// Image decoding and writing: hand-built PNG (8- and 16-bit) and BMP files, JPEG round trips, the
// channel conversions, errors naming the file, and real chest X-rays when ../shared/data is there.
#include <doctest/doctest.h>

#include <filesystem>

#include "nn/data/csv.hpp"
#include "nn/data/image.hpp"
#include "tests/nn/data/helpers.hpp"
#include "tests/support.hpp"

namespace loupe::test {

namespace {

void put32be(std::vector<uint8_t>& out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<uint8_t>(v >> s));
}
void put16le(std::vector<uint8_t>& out, uint32_t v) {
  out.push_back(static_cast<uint8_t>(v));
  out.push_back(static_cast<uint8_t>(v >> 8));
}
void put32le(std::vector<uint8_t>& out, uint32_t v) {
  put16le(out, v & 0xffff);
  put16le(out, v >> 16);
}

uint32_t crc32(const uint8_t* p, size_t n) {
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; ++i) {
    c ^= p[i];
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
  }
  return c ^ 0xffffffffu;
}

// A PNG written by hand (independent of stb): IHDR, one IDAT holding a zlib stream of one stored
// (uncompressed) deflate block, IEND. `scanlines` already hold each row's filter byte (0 = none).
std::vector<uint8_t> hand_png(uint32_t width, uint32_t height, uint8_t depth, uint8_t colour_type,
                              const std::vector<uint8_t>& scanlines) {
  std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  auto chunk = [&](const char* type, const std::vector<uint8_t>& data) {
    put32be(png, static_cast<uint32_t>(data.size()));
    std::vector<uint8_t> body(type, type + 4);
    body.insert(body.end(), data.begin(), data.end());
    png.insert(png.end(), body.begin(), body.end());
    put32be(png, crc32(body.data(), body.size()));
  };
  std::vector<uint8_t> ihdr;
  put32be(ihdr, width);
  put32be(ihdr, height);
  ihdr.insert(ihdr.end(), {depth, colour_type, 0, 0, 0});
  chunk("IHDR", ihdr);
  std::vector<uint8_t> z = {0x78, 0x01, 1};  // zlib header; BFINAL=1, BTYPE=00 (stored)
  put16le(z, static_cast<uint32_t>(scanlines.size()));
  put16le(z, ~static_cast<uint32_t>(scanlines.size()) & 0xffff);
  z.insert(z.end(), scanlines.begin(), scanlines.end());
  uint32_t a = 1, b = 0;  // Adler-32
  for (uint8_t v : scanlines) {
    a = (a + v) % 65521;
    b = (b + a) % 65521;
  }
  put32be(z, (b << 16) | a);
  chunk("IDAT", z);
  chunk("IEND", {});
  return png;
}

// Expected pixels: 8-bit sample values / 255 as an f64 tensor.
Tensor over255(const std::vector<double>& v, const Shape& shape) {
  std::vector<double> scaled = v;
  for (double& x : scaled) x /= 255.0;
  return from_values(scaled, shape, DType::f64);
}

}  // namespace

TEST_CASE("load_image: a hand-built 8-bit grey PNG, as stored, as grey and as RGB") {
  ScratchDir dir("image");
  // 3 wide, 2 high; each row starts with filter byte 0 (none).
  const std::vector<uint8_t> rows = {0, 0, 51, 255, 0, 102, 204, 17};
  write_bytes(dir.file("g.png"), hand_png(3, 2, 8, 0, rows));
  Tensor img = nn::load_image(dir.file("g.png"));
  CHECK(img.shape() == Shape{1, 2, 3});
  CHECK(img.dtype() == DType::f32);
  check_close(img, over255({0, 51, 255, 102, 204, 17}, {1, 2, 3}), 1e-7, 0, "grey png");
  check_close(nn::load_image(dir.file("g.png"), nn::ImageChannels::grey), img, 0, 0, "grey as grey");
  Tensor rgb = nn::load_image(dir.file("g.png"), nn::ImageChannels::rgb);
  CHECK(rgb.shape() == Shape{3, 2, 3});
  for (int64_t c = 0; c < 3; ++c) check_close(ops::select(rgb, 0, c), ops::select(img, 0, 0), 0, 0, "grey repeated");
}

TEST_CASE("load_image: a hand-built 16-bit grey PNG keeps 16-bit precision") {
  ScratchDir dir("image");
  // 2 x 1 pixels, big-endian 16-bit samples 0x0102 = 258 and 0xffff.
  const std::vector<uint8_t> rows = {0, 0x01, 0x02, 0xff, 0xff};
  write_bytes(dir.file("g16.png"), hand_png(2, 1, 16, 0, rows));
  Tensor img = nn::load_image(dir.file("g16.png"));
  CHECK(img.shape() == Shape{1, 1, 2});
  CHECK(values(img)[0] == doctest::Approx(258.0 / 65535.0).epsilon(1e-6));
  CHECK(values(img)[1] == doctest::Approx(1.0));
}

TEST_CASE("load_image: a hand-built RGB PNG; grey by the ITU-R 601-2 luma; RGBA drops alpha") {
  ScratchDir dir("image");
  // 2 x 1 RGB: (255, 0, 0) and (10, 20, 30).
  write_bytes(dir.file("c.png"), hand_png(2, 1, 8, 2, {0, 255, 0, 0, 10, 20, 30}));
  Tensor img = nn::load_image(dir.file("c.png"));
  CHECK(img.shape() == Shape{3, 1, 2});
  check_close(img, over255({255, 10, 0, 20, 0, 30}, {3, 1, 2}), 1e-7, 0, "rgb png planes");
  // 0.299 * 255 = 76.245; 0.299 * 10 + 0.587 * 20 + 0.114 * 30 = 18.15.
  check_close(nn::load_image(dir.file("c.png"), nn::ImageChannels::grey), over255({76.245, 18.15}, {1, 1, 2}), 1e-6,
              0, "rgb as grey");
  // RGBA (colour type 6): alpha is dropped.
  write_bytes(dir.file("a.png"), hand_png(1, 1, 8, 6, {0, 1, 2, 3, 128}));
  check_close(nn::load_image(dir.file("a.png")), over255({1, 2, 3}, {3, 1, 1}), 1e-7, 0, "rgba");
  // grey + alpha (colour type 4) gives one channel.
  write_bytes(dir.file("ga.png"), hand_png(1, 1, 8, 4, {0, 200, 7}));
  check_close(nn::load_image(dir.file("ga.png")), over255({200}, {1, 1, 1}), 1e-7, 0, "grey alpha");
}

TEST_CASE("load_image: a hand-built 24-bit BMP (bottom-up rows, BGR, rows padded to 4 bytes)") {
  // 2 x 2 pixels: top row red, green; bottom row blue, white.
  std::vector<uint8_t> bmp = {'B', 'M'};
  const uint32_t row_bytes = 8;  // 2 pixels * 3 bytes, padded to 8
  put32le(bmp, 54 + 2 * row_bytes);
  put32le(bmp, 0);
  put32le(bmp, 54);
  put32le(bmp, 40);
  put32le(bmp, 2);   // width
  put32le(bmp, 2);   // height (positive: bottom-up)
  put16le(bmp, 1);   // planes
  put16le(bmp, 24);  // bits per pixel
  for (int i = 0; i < 6; ++i) put32le(bmp, 0);  // no compression, sizes, resolution, palette
  // bottom row first: blue (B=255), white; then the top row: red (R=255), green.
  bmp.insert(bmp.end(), {255, 0, 0, 255, 255, 255, 0, 0});
  bmp.insert(bmp.end(), {0, 0, 255, 0, 255, 0, 0, 0});
  ScratchDir dir("image");
  write_bytes(dir.file("x.bmp"), bmp);
  Tensor img = nn::load_image(dir.file("x.bmp"));
  CHECK(img.shape() == Shape{3, 2, 2});
  // planes R, G, B over (top-left, top-right, bottom-left, bottom-right)
  check_close(img, over255({255, 0, 0, 255, 0, 255, 0, 255, 0, 0, 255, 255}, {3, 2, 2}), 1e-7, 0, "bmp");
}

TEST_CASE("save_image / encode_image: PNG and BMP round-trip exactly, JPEG closely") {
  ScratchDir dir("image");
  // Values on the 8-bit grid survive PNG and BMP unchanged.
  std::vector<double> v;
  for (int i = 0; i < 3 * 4 * 5; ++i) v.push_back((i * 37 % 256) / 255.0);
  Tensor rgb = from_values(v, {3, 4, 5});
  nn::save_png(dir.file("a.png"), rgb);
  check_close(nn::load_image(dir.file("a.png")), rgb, 1e-7, 0, "png round trip");
  nn::save_image(dir.file("a.BMP"), rgb);
  check_close(nn::load_image(dir.file("a.BMP")), rgb, 1e-7, 0, "bmp round trip");
  Tensor grey = ops::select(rgb, 0, 1);  // an (H, W) image is written as grey
  nn::save_png(dir.file("g.png"), grey);
  check_close(nn::load_image(dir.file("g.png")), ops::unsqueeze(grey, 0), 1e-7, 0, "grey png round trip");
  // JPEG is lossy: a smooth image at quality 100 comes back within a few levels.
  std::vector<double> smooth;
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 16; ++y)
      for (int x = 0; x < 16; ++x) smooth.push_back(0.2 + 0.02 * x + 0.01 * y + 0.1 * c);
  Tensor s = from_values(smooth, {3, 16, 16});
  nn::save_image(dir.file("s.jpg"), s, 100);
  Tensor back = nn::load_image(dir.file("s.jpg"));
  CHECK(back.shape() == Shape{3, 16, 16});
  check_close(back, s, 6.0 / 255.0, 0, "jpeg round trip");
  const auto grey_jpeg = nn::encode_image(ops::select(s, 0, 0), nn::ImageFormat::jpeg, 90);
  // stb_image_write stores every JPEG as colour (YCbCr), so a grey one comes back with 3 channels
  // unless grey is asked for.
  CHECK(nn::decode_image(grey_jpeg, "mem.jpg").shape() == Shape{3, 16, 16});
  check_close(nn::decode_image(grey_jpeg, "mem.jpg", nn::ImageChannels::grey), ops::narrow(s, 0, 0, 1), 6.0 / 255.0,
              0, "grey jpeg");
  // Out-of-range values are clamped; NaN is written as 0.
  nn::save_png(dir.file("clamp.png"), from_values(std::vector<double>{-1.0, 2.0, std::nan("")}, {1, 1, 3}));
  CHECK(values(nn::load_image(dir.file("clamp.png"))) == std::vector<double>{0.0, 1.0, 0.0});
  // Only the written files are in the folder: no temporary files left behind.
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) files += entry.is_regular_file() ? 1 : 0;
  CHECK(files == 5);
}

TEST_CASE("load_image and save_image: errors name the file") {
  ScratchDir dir("image");
  const std::string missing = dir.file("missing.png");
  CHECK_THROWS_WITH_AS(nn::load_image(missing), doctest::Contains("missing.png': no such file"), Error);
  CHECK_THROWS_WITH_AS(nn::load_image(dir.path().string()), doctest::Contains("is a directory"), Error);
  write_text(dir.file("junk.png"), "this is not an image at all");
  CHECK_THROWS_WITH_AS(nn::load_image(dir.file("junk.png")), doctest::Contains("junk.png': cannot decode"), Error);
  write_text(dir.file("empty.png"), "");
  CHECK_THROWS_WITH_AS(nn::load_image(dir.file("empty.png")), doctest::Contains("empty.png': the file is empty"), Error);
  // A PNG cut short in its image data.
  auto png = hand_png(3, 2, 8, 0, {0, 0, 51, 255, 0, 102, 204, 17});
  png.resize(png.size() - 30);
  write_bytes(dir.file("cut.png"), png);
  CHECK_THROWS_WITH_AS(nn::load_image(dir.file("cut.png")), doctest::Contains("cut.png"), Error);
  CHECK_THROWS_AS(nn::save_png(dir.file("bad.png"), zeros({2, 4, 4})), Error);     // 2 channels
  CHECK_THROWS_AS(nn::save_png(dir.file("bad.png"), zeros({1, 1, 4, 4})), Error);  // 4-d
  CHECK_THROWS_WITH_AS(nn::save_image(dir.file("x.tiff"), zeros({1, 4, 4})), doctest::Contains("x.tiff"), Error);
  CHECK_THROWS_AS(nn::save_png(dir.file("no/such/folder/x.png"), zeros({1, 4, 4})), Error);
  CHECK_FALSE(std::filesystem::exists(dir.file("bad.png")));
}

TEST_CASE("load_image: real chest X-rays from ../shared/data/cxr") {
  const std::string cxr = cxr_dir();
  if (cxr.empty()) {
    MESSAGE("skipped: the chest X-ray data (../shared/data/cxr or $LOUPE_DATA_DIR/cxr) is not there");
    return;
  }
  // Expected values from an independent decoder (Python's zlib plus the PNG filter rules written
  // out by hand): the sum of all 8-bit samples and four pixels (row, column).
  struct Known {
    const char* file;
    double sum;
    double p00, p128_128, p17_255, p200_31;
  };
  const Known known[] = {
      {"cohen_12941_2020_358_Fig1_HTML.png", 10475477, 6, 196, 36, 174},
      {"cohen_40779_2020_233_Fig2_HTML-a.png", 8890455, 36, 209, 37, 8},
      {"kermany_person451_virus_932.png", 9502863, 119, 179, 88, 147},
      {"nih_00018145_000.png", 10365411, 25, 174, 86, 169},
  };
  for (const Known& k : known) {
    const std::string path = cxr + "/images/" + k.file;
    Tensor img = nn::load_image(path);
    REQUIRE(img.shape() == Shape{1, 256, 256});
    const std::vector<double> v = values(img);
    double sum = 0.0;
    for (double x : v) sum += x * 255.0;
    CHECK(sum == doctest::Approx(k.sum).epsilon(1e-6));
    CHECK(v[0] * 255.0 == doctest::Approx(k.p00));
    CHECK(v[128 * 256 + 128] * 255.0 == doctest::Approx(k.p128_128));
    CHECK(v[17 * 256 + 255] * 255.0 == doctest::Approx(k.p17_255));
    CHECK(v[200 * 256 + 31] * 255.0 == doctest::Approx(k.p200_31));
    CHECK(nn::load_image(path, nn::ImageChannels::rgb).shape() == Shape{3, 256, 256});
  }
}

}  // namespace loupe::test
