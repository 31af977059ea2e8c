// NoiseTunnel (SmoothGrad, SmoothGrad^2, VarGrad). See noise_tunnel.hpp.
#include "explain/noise_tunnel.hpp"

#include "tensor/ops/random_ops.hpp"

namespace loupe::explain {

namespace {

// Philox words one normal() call of `numel` elements uses (2 per f32 element, 4 per f64), and
// the blocks of 4 words it reserves.
uint64_t normal_words(int64_t numel, DType dtype) {
  return static_cast<uint64_t>(numel) * (dtype == DType::f64 ? 4u : 2u);
}
uint64_t normal_blocks(int64_t numel, DType dtype) { return (normal_words(numel, dtype) + 3) / 4; }

// (max - min) of each row of x (R, ...) as an (R, 1, ..., 1) tensor.
Tensor row_ranges(const Tensor& x) {
  const Tensor flat = ops::reshape(x, {x.size(0), -1});
  Shape shape(static_cast<size_t>(x.dim()), 1);
  shape[0] = x.size(0);
  return ops::reshape(ops::sub(ops::amax(flat, {1}), ops::amin(flat, {1})), shape);
}

}  // namespace

Attribution noise_tunnel(const Query& query, const Method& base, const NoiseTunnelOptions& options) {
  LOUPE_CHECK(static_cast<bool>(base), "noise_tunnel: no base method");
  LOUPE_CHECK(options.n_samples >= 1, "noise_tunnel: n_samples must be >= 1, got ", options.n_samples);
  const detail::Prepared p = detail::prepare(query, "noise_tunnel");
  const size_t n_inputs = p.inputs.size();
  LOUPE_CHECK(options.stdevs.size() == 1 || options.stdevs.size() == n_inputs, "noise_tunnel: ",
              options.stdevs.size(), " stdevs for ", n_inputs, " inputs");
  const auto r = static_cast<int64_t>(p.rows.size());
  const int64_t n = options.n_samples;

  // Noise scale per input: a number, or a per-row column for range-relative noise.
  std::vector<Tensor> sigma;
  for (size_t i = 0; i < n_inputs; ++i) {
    const double stdev = options.stdevs[options.stdevs.size() == 1 ? 0 : i];
    LOUPE_CHECK(stdev >= 0, "noise_tunnel: stdev must be >= 0, got ", stdev);
    sigma.push_back(options.relative_to_range ? ops::mul(row_ranges(p.inputs[i]), ops::scalar_like(stdev, p.inputs[i]))
                                              : ops::scalar_like(stdev, p.inputs[i]));
  }
  // Counter layout: input i's virtual row v uses blocks first + offset_i + v * blocks_i.
  Generator& gen = options.generator != nullptr ? *options.generator : default_generator();
  std::vector<uint64_t> blocks_per_row, input_offset;
  uint64_t total_blocks = 0;
  for (const Tensor& x : p.inputs) {
    blocks_per_row.push_back(normal_blocks(x.numel() / std::max<int64_t>(r, 1), x.dtype()));
    input_offset.push_back(total_blocks);
    total_blocks += blocks_per_row.back() * static_cast<uint64_t>(r * n);
  }
  const uint64_t seed = gen.seed();
  const uint64_t first = gen.reserve(total_blocks);

  std::vector<Tensor> sum, sum_sq;
  for (const Tensor& x : p.inputs) {
    sum.push_back(zeros_like(x));
    sum_sq.push_back(zeros_like(x));
  }
  Tensor delta_sum;
  detail::for_each_chunk(r * n, options.internal_batch_size, [&](int64_t start, int64_t end) {
    std::vector<int64_t> rows, classes;
    for (int64_t v = start; v < end; ++v) {
      rows.push_back(v / n);
      classes.push_back(p.classes[static_cast<size_t>(v / n)]);
    }
    const Tensor index = detail::row_index(rows, p.inputs[0].device());
    Query noisy;
    noisy.model = p.model;
    noisy.output = p.output;
    noisy.target = classes[0] < 0 ? Target::none() : Target::per_row(classes);
    for (size_t i = 0; i < n_inputs; ++i) {
      const Tensor x = ops::index_select(p.inputs[i], 0, index);
      Shape row_shape = x.shape();
      row_shape[0] = 1;
      // Virtual row v's noise starts at block first + offset_i + v * blocks_i. When a row fills
      // whole Philox blocks, the rows of a chunk are one run of blocks: one draw makes them all
      // (one kernel on a GPU instead of one per row); otherwise each row is drawn on its own.
      const uint64_t row_start = first + input_offset[i] + static_cast<uint64_t>(start) * blocks_per_row[i];
      Tensor noise;
      if (normal_words(x.numel() / std::max<int64_t>(x.size(0), 1), x.dtype()) % 4 == 0) {
        Generator chunk_gen(seed);
        chunk_gen.set_state(seed, row_start);
        noise = normal(x.shape(), 0.0, 1.0, x.dtype(), &chunk_gen, x.device());
      } else {
        std::vector<Tensor> noise_rows;
        for (int64_t v = start; v < end; ++v) {
          Generator row_gen(seed);
          row_gen.set_state(seed, row_start + static_cast<uint64_t>(v - start) * blocks_per_row[i]);
          noise_rows.push_back(normal(row_shape, 0.0, 1.0, x.dtype(), &row_gen, x.device()));
        }
        noise = ops::cat(noise_rows, 0);
      }
      const Tensor s = sigma[i].dim() == 0 ? sigma[i] : ops::index_select(sigma[i], 0, index);
      noisy.inputs.push_back(ops::add(x, ops::mul(noise, s)));
      noisy.baselines.push_back(ops::index_select(p.baselines[i], 0, index));
    }
    const Attribution a = base(noisy);
    LOUPE_CHECK(a.attributions.size() == n_inputs, "noise_tunnel: the base method returned ",
                a.attributions.size(), " attributions for ", n_inputs, " inputs");
    for (size_t i = 0; i < n_inputs; ++i) {
      LOUPE_CHECK(a.attributions[i].shape() == noisy.inputs[i].shape(), "noise_tunnel: the base method returned ",
                  shape_str(a.attributions[i].shape()), " for an input of shape ", shape_str(noisy.inputs[i].shape()),
                  " (several targets per row are resolved before the noise tunnel, not inside it)");
      sum[i] = ops::index_add(sum[i], 0, index, a.attributions[i]);
      if (options.type != NoiseType::smoothgrad) {  // SmoothGrad needs no second moment
        sum_sq[i] = ops::index_add(sum_sq[i], 0, index, ops::mul(a.attributions[i], a.attributions[i]));
      }
    }
    if (a.delta.defined()) {
      if (!delta_sum.defined()) delta_sum = zeros({r}, DType::f64, a.delta.device());
      delta_sum = ops::index_add(delta_sum, 0, index, a.delta);
    }
  });

  std::vector<Tensor> out;
  const auto inv_n = 1.0 / static_cast<double>(n);
  for (size_t i = 0; i < n_inputs; ++i) {
    const Tensor mean = ops::mul(sum[i], ops::scalar_like(inv_n, sum[i]));
    const Tensor mean_sq = ops::mul(sum_sq[i], ops::scalar_like(inv_n, sum_sq[i]));
    switch (options.type) {
      case NoiseType::smoothgrad: out.push_back(mean); break;
      case NoiseType::smoothgrad_sq: out.push_back(mean_sq); break;
      case NoiseType::vargrad: out.push_back(ops::sub(mean_sq, ops::mul(mean, mean))); break;
    }
  }
  Tensor delta;
  if (delta_sum.defined()) delta = ops::mul(delta_sum, ops::scalar_like(inv_n, delta_sum));
  return detail::make_result(p, std::move(out), delta);
}

}  // namespace loupe::explain
