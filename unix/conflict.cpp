// Gradient-conflict analysis (unix/conflict.hpp): matrix names, mean gradients, cosines, rows, CSV.
// Tests: tests/unix/test_conflict.cpp
#include "unix/conflict.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>

#include "autograd/autograd.hpp"
#include "report/files.hpp"
#include "unix/data.hpp"

namespace loupe::unix {

// --- which matrices ------------------------------------------------------------------------------

const std::vector<std::string>& matrix_kinds() {
  static const std::vector<std::string> kinds = {"q", "k", "v", "o", "gate", "up", "down"};
  return kinds;
}

std::optional<MatrixId> parse_matrix_name(const std::string& name) {
  std::vector<std::string> parts;
  std::stringstream in(name);
  for (std::string part; std::getline(in, part, '.');) parts.push_back(part);
  if (parts.size() < 4 || parts.back() != "weight") return std::nullopt;
  // The projection right before "weight": "q_proj" -> "q".
  const std::string& module = parts[parts.size() - 2];
  const std::string suffix = "_proj";
  if (module.size() <= suffix.size() || module.compare(module.size() - suffix.size(), suffix.size(), suffix) != 0) {
    return std::nullopt;
  }
  const std::string kind = module.substr(0, module.size() - suffix.size());
  const auto& kinds = matrix_kinds();
  if (std::find(kinds.begin(), kinds.end(), kind) == kinds.end()) return std::nullopt;
  // The layer: the number after the last "layers" segment that precedes the projection.
  for (size_t i = parts.size() - 2; i-- > 1;) {
    const std::string& number = parts[i];
    if (parts[i - 1] != "layers" || number.empty() || number.size() > 9) continue;
    if (!std::all_of(number.begin(), number.end(), [](char c) { return c >= '0' && c <= '9'; })) continue;
    return MatrixId{std::stoll(number), kind};
  }
  return std::nullopt;
}

MatrixFilter shared_layers(int64_t num_layers, int64_t n_separated_start, int64_t m_separated_end) {
  LOUPE_CHECK(num_layers > 0 && n_separated_start >= 0 && m_separated_end >= 0 &&
                  n_separated_start + m_separated_end < num_layers,
              "unix shared_layers: N + M must leave a shared layer of L, got L = ", num_layers, ", N = ",
              n_separated_start, ", M = ", m_separated_end);
  const int64_t first = n_separated_start;
  const int64_t end = num_layers - m_separated_end;
  return [first, end](const MatrixId& id) { return id.layer >= first && id.layer < end; };
}

nn::NamedTensors select_matrices(const nn::NamedTensors& parameters, const MatrixFilter& keep) {
  nn::NamedTensors out;
  for (const auto& [name, tensor] : parameters) {
    const std::optional<MatrixId> id = parse_matrix_name(name);
    if (id && (!keep || keep(*id))) out.emplace_back(name, tensor);
  }
  return out;
}

// --- mean gradients ----------------------------------------------------------------------------------

namespace {

Tensor checked_loss(const Tensor& loss, const char* what, int64_t batch) {
  LOUPE_CHECK(loss.defined() && loss.numel() == 1, "unix gradient_conflict: the ", what, " of batch ", batch,
              " must be a one-element tensor, got ", loss.defined() ? shape_str(loss.shape()) : std::string("none"));
  return loss;
}

void add_gradients(std::vector<Tensor>& sums, const std::vector<Tensor>& grads) {
  for (size_t p = 0; p < sums.size(); ++p) {
    if (!grads[p].defined()) continue;  // the loss does not reach this parameter: a zero gradient
    sums[p] = ops::add(sums[p], ops::to_dtype(grads[p], DType::f64));
  }
}

std::vector<Tensor> zero_sums(const std::vector<Tensor>& parameters) {
  std::vector<Tensor> sums;
  for (const Tensor& p : parameters) sums.push_back(zeros(p.shape(), DType::f64, p.device()));
  return sums;
}

void check_parameters(const std::vector<Tensor>& parameters) {
  for (size_t p = 0; p < parameters.size(); ++p) {
    LOUPE_CHECK(parameters[p].defined() && parameters[p].requires_grad(), "unix gradient_conflict: parameter ", p,
                " does not require a gradient");
  }
}

}  // namespace

std::vector<std::vector<Tensor>> mean_gradients(const BatchLoss& loss, int64_t num_batches,
                                                const std::vector<std::vector<int64_t>>& groups,
                                                const std::vector<Tensor>& parameters) {
  LOUPE_CHECK(static_cast<bool>(loss), "unix mean_gradients: no loss function");
  check_parameters(parameters);
  std::vector<std::vector<size_t>> member_of(static_cast<size_t>(std::max<int64_t>(num_batches, 0)));
  for (size_t g = 0; g < groups.size(); ++g) {
    for (int64_t b : groups[g]) {
      LOUPE_CHECK(b >= 0 && b < num_batches, "unix mean_gradients: batch ", b, " of group ", g, " outside [0, ",
                  num_batches, ")");
      member_of[static_cast<size_t>(b)].push_back(g);
    }
  }
  std::vector<std::vector<Tensor>> sums(groups.size());
  for (auto& s : sums) s = zero_sums(parameters);
  for (int64_t b = 0; b < num_batches; ++b) {
    const auto& member = member_of[static_cast<size_t>(b)];
    if (member.empty()) continue;
    const Tensor l = checked_loss(loss(b), "loss", b);
    const std::vector<Tensor> grads = grad({l}, parameters, {}, false, true);
    NoGradGuard no_grad;
    for (size_t g : member) add_gradients(sums[g], grads);
  }
  NoGradGuard no_grad;
  for (size_t g = 0; g < groups.size(); ++g) {
    if (groups[g].empty()) continue;
    const double count = static_cast<double>(groups[g].size());
    for (Tensor& s : sums[g]) s = ops::div(s, count);
  }
  return sums;
}

// --- the math (float64) ------------------------------------------------------------------------------

double DotProducts::cosine() const {
  if (!(aa > 0.0) || !(bb > 0.0)) return std::numeric_limits<double>::quiet_NaN();
  // Rounding can push |cos| a hair past 1 for parallel vectors.
  return std::clamp(ab / std::sqrt(aa * bb), -1.0, 1.0);
}

DotProducts& DotProducts::operator+=(const DotProducts& other) {
  ab += other.ab;
  aa += other.aa;
  bb += other.bb;
  return *this;
}

DotProducts dot_products(const std::vector<double>& a, const std::vector<double>& b) {
  LOUPE_CHECK(a.size() == b.size(), "unix cosine: vectors of ", a.size(), " and ", b.size(), " elements");
  DotProducts d;
  for (size_t i = 0; i < a.size(); ++i) {
    d.ab += a[i] * b[i];
    d.aa += a[i] * a[i];
    d.bb += b[i] * b[i];
  }
  return d;
}

DotProducts dot_products(const Tensor& a, const Tensor& b) {
  LOUPE_CHECK(a.numel() == b.numel(), "unix cosine: tensors ", shape_str(a.shape()), " and ", shape_str(b.shape()));
  NoGradGuard no_grad;
  const Tensor x = ops::to_dtype(a.detach(), DType::f64);
  const Tensor y = ops::reshape(ops::to_dtype(b.detach(), DType::f64), x.shape());
  DotProducts d;
  d.ab = ops::sum(ops::mul(x, y)).item();
  d.aa = ops::sum(ops::mul(x, x)).item();
  d.bb = ops::sum(ops::mul(y, y)).item();
  return d;
}

double cosine(const std::vector<double>& a, const std::vector<double>& b) { return dot_products(a, b).cosine(); }

double conflict_score(double cos_text_mm, double cos_a_b) { return -(cos_text_mm - cos_a_b); }

// --- the analysis --------------------------------------------------------------------------------------

namespace {

// Mean gradients of the image-token and the text-token loss over the same image-text batches.
std::pair<std::vector<Tensor>, std::vector<Tensor>> within_batch_gradients(const ConflictInputs& inputs,
                                                                           const std::vector<Tensor>& parameters) {
  std::vector<Tensor> image_sum = zero_sums(parameters);
  std::vector<Tensor> text_sum = zero_sums(parameters);
  for (int64_t b = 0; b < inputs.multimodal_batches; ++b) {
    const auto [image_loss, text_loss] = inputs.within_batch_losses(b);
    checked_loss(image_loss, "image-token loss", b);
    checked_loss(text_loss, "text-token loss", b);
    // One forward, two backward passes: the first keeps the graph for the second.
    const std::vector<Tensor> g_image = grad({image_loss}, parameters, {}, true, true);
    const std::vector<Tensor> g_text = grad({text_loss}, parameters, {}, false, true);
    NoGradGuard no_grad;
    add_gradients(image_sum, g_image);
    add_gradients(text_sum, g_text);
  }
  NoGradGuard no_grad;
  const auto count = static_cast<double>(inputs.multimodal_batches);
  for (Tensor& s : image_sum) s = ops::div(s, count);
  for (Tensor& s : text_sum) s = ops::div(s, count);
  return {image_sum, text_sum};
}

}  // namespace

std::vector<ConflictRow> gradient_conflict(const ConflictInputs& inputs, const nn::NamedTensors& matrices,
                                           const ConflictOptions& options) {
  LOUPE_CHECK(inputs.text_loss && inputs.multimodal_loss, "unix gradient_conflict: both loss functions are required");
  LOUPE_CHECK(inputs.text_batches > 0 && inputs.multimodal_batches > 0,
              "unix gradient_conflict: needs text-only and image-text batches, got ", inputs.text_batches, " and ",
              inputs.multimodal_batches);
  LOUPE_CHECK(!matrices.empty(), "unix gradient_conflict: no matrices to measure");
  std::vector<MatrixId> ids;
  std::vector<Tensor> parameters;
  for (const auto& [name, tensor] : matrices) {
    const std::optional<MatrixId> id = parse_matrix_name(name);
    LOUPE_CHECK(id.has_value(), "unix gradient_conflict: '", name,
                "' is not a layer matrix (layers.<i>.<...>.{q,k,v,o,gate,up,down}_proj.weight)");
    ids.push_back(*id);
    parameters.push_back(tensor);
  }

  // One index space: text-only batches [0, nt), image-text batches [nt, nt + nm).
  const int64_t nt = inputs.text_batches;
  const int64_t nm = inputs.multimodal_batches;
  const BatchLoss loss = [&inputs, nt](int64_t b) {
    return b < nt ? inputs.text_loss(b) : inputs.multimodal_loss(b - nt);
  };
  std::vector<int64_t> text_group, mm_group;
  for (int64_t b = 0; b < nt; ++b) text_group.push_back(b);
  for (int64_t b = nt; b < nt + nm; ++b) mm_group.push_back(b);
  std::vector<int64_t> pool;
  if (options.pool != BaselinePool::multimodal) pool.insert(pool.end(), text_group.begin(), text_group.end());
  if (options.pool != BaselinePool::text) pool.insert(pool.end(), mm_group.begin(), mm_group.end());
  LOUPE_CHECK(pool.size() >= 2, "unix gradient_conflict: the baseline pool needs at least 2 batches, has ", pool.size());
  const std::vector<int64_t> order = seeded_permutation(static_cast<int64_t>(pool.size()), options.seed);
  const size_t half = pool.size() / 2;
  std::vector<int64_t> half_a, half_b;
  for (size_t i = 0; i < 2 * half; ++i) (i < half ? half_a : half_b).push_back(pool[static_cast<size_t>(order[i])]);

  const auto means = mean_gradients(loss, nt + nm, {text_group, mm_group, half_a, half_b}, parameters);
  std::vector<Tensor> within_image, within_text;
  if (inputs.within_batch_losses) std::tie(within_image, within_text) = within_batch_gradients(inputs, parameters);

  // Per matrix, then summed per layer for the "all" rows.
  struct Measured {
    DotProducts text_mm, a_b, within;
    bool has_within = false;
    int64_t numel = 0;
  };
  std::map<int64_t, std::map<size_t, std::vector<std::pair<size_t, Measured>>>> by_layer;  // layer -> kind -> (param, m)
  const auto& kinds = matrix_kinds();
  for (size_t p = 0; p < parameters.size(); ++p) {
    Measured m;
    m.text_mm = dot_products(means[0][p], means[1][p]);
    m.a_b = dot_products(means[2][p], means[3][p]);
    if (!within_image.empty()) {
      m.within = dot_products(within_image[p], within_text[p]);
      m.has_within = true;
    }
    m.numel = parameters[p].numel();
    const auto kind = static_cast<size_t>(std::find(kinds.begin(), kinds.end(), ids[p].kind) - kinds.begin());
    by_layer[ids[p].layer][kind].emplace_back(p, m);
  }

  const double nan = std::numeric_limits<double>::quiet_NaN();
  auto make_row = [&](int64_t layer, const std::string& kind, const std::string& name, const Measured& m) {
    ConflictRow row;
    row.step = options.step;
    row.layer = layer;
    row.kind = kind;
    row.parameter = name;
    row.numel = m.numel;
    row.cos_text_mm = m.text_mm.cosine();
    row.cos_a_b = m.a_b.cosine();
    row.conflict = conflict_score(row.cos_text_mm, row.cos_a_b);
    row.within_batch_cos_image_text = m.has_within ? m.within.cosine() : nan;
    return row;
  };
  std::vector<ConflictRow> rows;
  for (const auto& [layer, per_kind] : by_layer) {
    Measured total;
    size_t count = 0;
    for (const auto& [kind, entries] : per_kind) {
      for (const auto& [p, m] : entries) {
        rows.push_back(make_row(layer, kinds[kind], matrices[p].first, m));
        total.text_mm += m.text_mm;
        total.a_b += m.a_b;
        total.within += m.within;
        total.has_within = m.has_within;
        total.numel += m.numel;
        ++count;
      }
    }
    if (options.layer_rows && count > 1) rows.push_back(make_row(layer, "all", "", total));
  }
  return rows;
}

// --- CSV -------------------------------------------------------------------------------------------------

namespace {

std::string number(double value) {
  if (std::isnan(value)) return "";
  std::ostringstream out;
  out.precision(10);
  out << value;
  return out.str();
}

}  // namespace

std::string conflict_csv(const std::vector<ConflictRow>& rows) {
  std::ostringstream out;
  out << "step,layer,kind,parameter,numel,cos_text_mm,cos_a_b,conflict,within_batch_cos_image_text_not_paper_metric\n";
  for (const ConflictRow& r : rows) {
    // Parameter names are dotted identifiers: no commas or quotes to escape.
    LOUPE_CHECK(r.parameter.find_first_of(",\"\n") == std::string::npos, "unix conflict_csv: parameter name '",
                r.parameter, "' holds a comma, quote or line break");
    out << r.step << ',' << r.layer << ',' << r.kind << ',' << r.parameter << ',' << r.numel << ','
        << number(r.cos_text_mm) << ',' << number(r.cos_a_b) << ',' << number(r.conflict) << ','
        << number(r.within_batch_cos_image_text) << '\n';
  }
  return out.str();
}

void write_conflict_csv(const std::string& path, const std::vector<ConflictRow>& rows) {
  report::write_text_atomic(path, conflict_csv(rows));
}

}  // namespace loupe::unix
