// Gradient-conflict analysis of Uni-X (REFERENCE.md section 8), generic over any model: the caller
// gives "the loss of batch i" as callables and the (name, parameter) list to measure.
//
// Per weight matrix W (a layer's q, k, v, o, gate, up or down projection):
//   g_t  = mean over the text-only batches of dL/dW,   g_m = the same over the image-text batches,
//   g_A, g_B = the same over two random halves A, B of one pool of batches (by default the pool is
//              all text-only and image-text batches together; an odd batch out is left unused),
//   conflict = -(cos(g_t, g_m) - cos(g_A, g_B)).
// cos(g_A, g_B) is the baseline: how alike two mean gradients of the same data are at this sample
// size (at small scale it dominates, so it is reported beside the raw cosine). Cosines are taken
// in float64 over the flattened matrix; a zero gradient gives NaN. Each batch is differentiated
// once; its gradient is added to every group (t or m, and A or B) it belongs to.
// Besides one row per matrix, a row of kind "all" per layer takes the cosines over the layer's
// measured matrices concatenated.
// The within-batch variant, cos(mean grad of the image-token loss, mean grad of the text-token
// loss) over the same image-text batches, is NOT the paper's metric; it is reported in its own,
// so-named column.
// Tests: tests/unix/test_conflict.cpp
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "nn/module.hpp"
#include "tensor/tensor.hpp"

#if defined(unix)
#error "unix/ needs -std=c++20 (GNU dialects predefine the macro 'unix', the name of this namespace)"
#endif

namespace loupe::unix {

// --- which matrices ------------------------------------------------------------------------------

// A decoder layer's weight matrix, from a parameter name such as
// "model.layers.3.self_attn.q_proj.weight" -> {3, "q"}: the number after a "layers" segment and
// the projection (q_proj k_proj v_proj o_proj gate_proj up_proj down_proj) right before the final
// "weight". Segments in between (a modality copy such as "text") are allowed.
struct MatrixId {
  int64_t layer = -1;
  std::string kind;  // "q", "k", "v", "o", "gate", "up", "down"
  bool operator==(const MatrixId&) const = default;
};
std::optional<MatrixId> parse_matrix_name(const std::string& name);
const std::vector<std::string>& matrix_kinds();  // q k v o gate up down

using MatrixFilter = std::function<bool(const MatrixId&)>;
// The layers Uni-X shares: [n_separated_start, num_layers - m_separated_end) of num_layers.
MatrixFilter shared_layers(int64_t num_layers, int64_t n_separated_start, int64_t m_separated_end);
// The parameters whose names parse as a layer matrix and that `keep` accepts (all when empty), in
// their given order.
nn::NamedTensors select_matrices(const nn::NamedTensors& parameters, const MatrixFilter& keep = {});

// --- mean gradients ----------------------------------------------------------------------------------

// The 0-d loss of batch i (a graph reaching the parameters).
using BatchLoss = std::function<Tensor(int64_t batch)>;

// For every group (indices of batches in [0, num_batches)), the mean over its batches of
// d loss(batch) / d parameter, float64 on the parameter's device: result[group][parameter].
// A batch in no group is not evaluated; a parameter the loss does not reach gets zeros.
std::vector<std::vector<Tensor>> mean_gradients(const BatchLoss& loss, int64_t num_batches,
                                                const std::vector<std::vector<int64_t>>& groups,
                                                const std::vector<Tensor>& parameters);

// --- the math (float64) ------------------------------------------------------------------------------

// <a, b>, <a, a>, <b, b> of two gradients; sums of them are the products of concatenations.
struct DotProducts {
  double ab = 0.0, aa = 0.0, bb = 0.0;
  double cosine() const;  // ab / sqrt(aa bb); NaN when either norm is 0
  DotProducts& operator+=(const DotProducts& other);
};
DotProducts dot_products(const std::vector<double>& a, const std::vector<double>& b);
DotProducts dot_products(const Tensor& a, const Tensor& b);  // flattened, in float64
double cosine(const std::vector<double>& a, const std::vector<double>& b);
// -(cos(g_t, g_m) - cos(g_A, g_B)); NaN when either is NaN.
double conflict_score(double cos_text_mm, double cos_a_b);

// --- the analysis --------------------------------------------------------------------------------------

enum class BaselinePool { all, text, multimodal };

struct ConflictInputs {
  BatchLoss text_loss;  // loss of text-only batch i, i in [0, text_batches)
  int64_t text_batches = 0;
  BatchLoss multimodal_loss;  // loss of image-text batch i, i in [0, multimodal_batches)
  int64_t multimodal_batches = 0;
  // Optional, for the within-batch variant: the image-token loss and the text-token loss of
  // image-text batch i (one forward, two losses). Empty: that column is NaN.
  std::function<std::pair<Tensor, Tensor>(int64_t batch)> within_batch_losses;
};

struct ConflictOptions {
  uint64_t seed = 0;  // the random halves A, B
  int64_t step = 0;   // the checkpoint's training step, copied into every row
  BaselinePool pool = BaselinePool::all;
  bool layer_rows = true;  // add the per-layer "all" rows
};

struct ConflictRow {
  int64_t step = 0;
  int64_t layer = -1;
  std::string kind;       // q k v o gate up down, or "all" (the layer's measured matrices together)
  std::string parameter;  // the parameter name ("" for "all" rows)
  int64_t numel = 0;
  double cos_text_mm = 0.0;  // cos(g_t, g_m)
  double cos_a_b = 0.0;      // cos(g_A, g_B), the same-pool baseline
  double conflict = 0.0;     // -(cos_text_mm - cos_a_b)
  double within_batch_cos_image_text = 0.0;  // NOT the paper's metric (NaN when not measured)
};

// Rows ordered by layer, then kind in matrix_kinds() order, then the layer's "all" row.
// `matrices` must be parsable by parse_matrix_name (use select_matrices).
std::vector<ConflictRow> gradient_conflict(const ConflictInputs& inputs, const nn::NamedTensors& matrices,
                                           const ConflictOptions& options = {});

// The rows as CSV, header
//   step,layer,kind,parameter,numel,cos_text_mm,cos_a_b,conflict,within_batch_cos_image_text_not_paper_metric
// (NaN as an empty field); written atomically (a temporary file renamed once complete).
std::string conflict_csv(const std::vector<ConflictRow>& rows);
void write_conflict_csv(const std::string& path, const std::vector<ConflictRow>& rows);

}  // namespace loupe::unix
