// The report codec that carries a sharded explanation's images to rank 0 (explain/report_codec.hpp):
// a round trip keeps every field (NaN deltas, empty strings, bytes such as ':' and newlines), and
// damaged bytes are refused.
#include <doctest/doctest.h>

#include <cmath>

#include "explain/report_codec.hpp"
#include "tests/support.hpp"

namespace loupe::test {

TEST_CASE("report codec: images survive the round trip; damaged bytes are refused") {
  explain::ReportImage image;
  image.name = "a:b";
  image.source = "dir/a b\n.png";
  image.input_png = "a_input.png";
  image.features = 64;
  image.probabilities = {0.25, 0.75, 1e-300};
  image.predicted = 1;
  explain::ReportTarget target;
  target.index = 1;
  target.label = "dark";
  target.probability = 0.75;
  target.attributions.push_back({"saliency", "a_saliency.npy", "m.png", "o.png", false, 1.0 / 3.0, NAN, 0.5});
  target.attributions.push_back({"ig", "a_ig.npy", "", "", true, -2.5, 1e-7, 0.125});
  image.targets = {target};
  explain::ReportImage empty;
  const std::string bytes = explain::encode_report_images({image, empty});
  const auto back = explain::decode_report_images(bytes);
  REQUIRE(back.size() == 2);
  CHECK(back[0].name == image.name);
  CHECK(back[0].source == image.source);
  CHECK(back[0].mask_png.empty());
  CHECK(back[0].features == 64);
  CHECK(back[0].probabilities == image.probabilities);
  REQUIRE(back[0].targets.size() == 1);
  const auto& a = back[0].targets[0].attributions;
  REQUIRE(a.size() == 2);
  CHECK(a[0].method == "saliency");
  CHECK(!a[0].is_signed);
  CHECK(a[0].total == 1.0 / 3.0);
  CHECK(std::isnan(a[0].delta));
  CHECK(a[1].delta == 1e-7);
  CHECK(back[1].targets.empty());
  CHECK(explain::decode_report_images(explain::encode_report_images({})).empty());
  CHECK_THROWS_AS(explain::decode_report_images(bytes.substr(0, bytes.size() / 2)), Error);
  CHECK_THROWS_AS(explain::decode_report_images(bytes + "x"), Error);
  CHECK_THROWS_AS(explain::decode_report_images("9999999999 "), Error);
}

}  // namespace loupe::test
