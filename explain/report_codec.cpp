// Report images as bytes. See report_codec.hpp.
#include "explain/report_codec.hpp"

#include <cstdio>
#include <cstdlib>

namespace loupe::explain {

namespace {

class Writer {
 public:
  void text(const std::string& s) { out_ += std::to_string(s.size()) + ":" + s; }
  void number(double v) {
    char buffer[40];
    std::snprintf(buffer, sizeof buffer, "%.17g ", v);
    out_ += buffer;
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

class Reader {
 public:
  explicit Reader(const std::string& in) : in_(in) {}
  std::string text() {
    const size_t colon = in_.find(':', pos_);
    LOUPE_CHECK(colon != std::string::npos, "report shards: expected a string at byte ", pos_);
    const size_t length = static_cast<size_t>(std::strtoull(in_.substr(pos_, colon - pos_).c_str(), nullptr, 10));
    LOUPE_CHECK(colon + 1 + length <= in_.size(), "report shards: a string at byte ", pos_, " runs past the end");
    std::string s = in_.substr(colon + 1, length);
    pos_ = colon + 1 + length;
    return s;
  }
  double number() {
    const size_t space = in_.find(' ', pos_);
    LOUPE_CHECK(space != std::string::npos, "report shards: expected a number at byte ", pos_);
    const std::string token = in_.substr(pos_, space - pos_);
    char* end = nullptr;
    const double v = std::strtod(token.c_str(), &end);
    LOUPE_CHECK(!token.empty() && *end == '\0', "report shards: '", token, "' at byte ", pos_, " is not a number");
    pos_ = space + 1;
    return v;
  }
  int64_t count() {
    const double v = number();
    LOUPE_CHECK(v >= 0 && v <= 1e9 && v == static_cast<double>(static_cast<int64_t>(v)), "report shards: bad count ", v);
    return static_cast<int64_t>(v);
  }
  bool done() const { return pos_ == in_.size(); }

 private:
  const std::string& in_;
  size_t pos_ = 0;
};

}  // namespace

std::string encode_report_images(const std::vector<ReportImage>& images) {
  Writer w;
  w.number(static_cast<double>(images.size()));
  for (const ReportImage& image : images) {
    w.text(image.name), w.text(image.source), w.text(image.input_png), w.text(image.mask_png);
    w.number(static_cast<double>(image.features));
    w.number(static_cast<double>(image.predicted));
    w.number(static_cast<double>(image.probabilities.size()));
    for (double p : image.probabilities) w.number(p);
    w.number(static_cast<double>(image.targets.size()));
    for (const ReportTarget& t : image.targets) {
      w.number(static_cast<double>(t.index)), w.text(t.label), w.number(t.probability);
      w.number(static_cast<double>(t.attributions.size()));
      for (const ReportAttribution& a : t.attributions) {
        w.text(a.method), w.text(a.npy), w.text(a.map_png), w.text(a.overlay_png);
        w.number(a.is_signed ? 1 : 0), w.number(a.total), w.number(a.delta), w.number(a.seconds);
      }
    }
  }
  return w.take();
}

std::vector<ReportImage> decode_report_images(const std::string& bytes) {
  Reader r(bytes);
  std::vector<ReportImage> images(static_cast<size_t>(r.count()));
  for (ReportImage& image : images) {
    image.name = r.text(), image.source = r.text(), image.input_png = r.text(), image.mask_png = r.text();
    image.features = r.count();
    image.predicted = r.count();
    image.probabilities.resize(static_cast<size_t>(r.count()));
    for (double& p : image.probabilities) p = r.number();
    image.targets.resize(static_cast<size_t>(r.count()));
    for (ReportTarget& t : image.targets) {
      t.index = r.count(), t.label = r.text(), t.probability = r.number();
      t.attributions.resize(static_cast<size_t>(r.count()));
      for (ReportAttribution& a : t.attributions) {
        a.method = r.text(), a.npy = r.text(), a.map_png = r.text(), a.overlay_png = r.text();
        a.is_signed = r.number() != 0, a.total = r.number(), a.delta = r.number(), a.seconds = r.number();
      }
    }
  }
  LOUPE_CHECK(r.done(), "report shards: bytes left over after ", images.size(), " images");
  return images;
}

}  // namespace loupe::explain
