// Module tree bookkeeping, state dicts and the printed summary. See module.hpp.
#include "nn/module.hpp"

#include <algorithm>
#include <iomanip>
#include <set>
#include <sstream>
#include <unordered_map>

namespace loupe::nn {

namespace {

// --- summary recording: operator() reports each call to the recorder of the running summary ---

struct SummaryRow {
  const Module* module;
  int depth;
  Shape output;
  bool done = false;
};

struct SummaryRecorder {
  std::vector<SummaryRow> rows;
  int depth = 0;
};

thread_local SummaryRecorder* active_recorder = nullptr;

// "11689512" -> "11,689,512"
std::string with_commas(int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

// At most `limit` keys, then "... and N more": error messages stay readable for whole models.
std::string key_list(const std::vector<std::string>& keys, size_t limit = 12) {
  std::string out;
  for (size_t i = 0; i < keys.size() && i < limit; ++i) out += (i ? ", '" : "'") + keys[i] + "'";
  if (keys.size() > limit) out += ", ... and " + std::to_string(keys.size() - limit) + " more";
  return out;
}

}  // namespace

Tensor Module::operator()(const Tensor& x) {
  SummaryRecorder* recorder = active_recorder;
  if (recorder == nullptr) {
    if (forward_hooks_.empty()) return forward(x);
    Tensor y = forward(x);
    // A copy of the list: a hook may remove itself (or another) while it runs.
    const auto hooks = forward_hooks_;
    for (const auto& hook : hooks) hook.second(y);
    return y;
  }
  const size_t row = recorder->rows.size();
  recorder->rows.push_back({this, recorder->depth, {}});
  ++recorder->depth;
  Tensor y = forward(x);
  --recorder->depth;
  recorder->rows[row].output = y.shape();
  recorder->rows[row].done = true;
  const auto hooks = forward_hooks_;
  for (const auto& hook : hooks) hook.second(y);
  return y;
}

ForwardHookHandle Module::add_forward_hook(ForwardHook fn) {
  LOUPE_CHECK(fn != nullptr, "add_forward_hook: empty hook function on a ", type_name());
  const int64_t id = next_hook_id_++;
  forward_hooks_.emplace_back(id, std::move(fn));
  return ForwardHookHandle(this, id);
}

ForwardHookHandle& ForwardHookHandle::operator=(ForwardHookHandle&& other) noexcept {
  if (this != &other) {
    remove();
    module_ = std::exchange(other.module_, nullptr);
    id_ = std::exchange(other.id_, 0);
  }
  return *this;
}

void ForwardHookHandle::remove() {
  if (module_ == nullptr) return;
  auto& hooks = module_->forward_hooks_;
  hooks.erase(std::remove_if(hooks.begin(), hooks.end(), [&](const auto& h) { return h.first == id_; }), hooks.end());
  module_ = nullptr;
}

Tensor Module::register_parameter(const std::string& name, Tensor value) {
  LOUPE_CHECK(value.defined(), "register_parameter: parameter '", name, "' is undefined");
  value.set_requires_grad(true);
  parameters_.emplace_back(name, value);
  return value;
}

Tensor Module::register_buffer(const std::string& name, Tensor value, bool persistent) {
  LOUPE_CHECK(value.defined(), "register_buffer: buffer '", name, "' is undefined");
  buffers_.push_back({name, value, persistent});
  return value;
}

void Module::collect(const std::string& prefix, bool params, bool buffers, bool persistent_only,
                     NamedTensors& out) const {
  if (params)
    for (const auto& [name, tensor] : parameters_) out.emplace_back(prefix + name, tensor);
  if (buffers)
    for (const Buffer& b : buffers_)
      if (b.persistent || !persistent_only) out.emplace_back(prefix + b.name, b.tensor);
  for (const auto& [name, child] : children_) child->collect(prefix + name + ".", params, buffers, persistent_only, out);
}

NamedTensors Module::named_parameters() const {
  NamedTensors out;
  collect("", true, false, false, out);
  return out;
}

NamedTensors Module::named_buffers() const {
  NamedTensors out;
  collect("", false, true, false, out);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [name, tensor] : named_parameters()) out.push_back(tensor);
  return out;
}

std::vector<std::pair<std::string, Module*>> Module::named_modules() {
  std::vector<std::pair<std::string, Module*>> out;
  for (const auto& [name, m] : std::as_const(*this).named_modules()) out.emplace_back(name, const_cast<Module*>(m));
  return out;
}

std::vector<std::pair<std::string, const Module*>> Module::named_modules() const {
  std::vector<std::pair<std::string, const Module*>> out{{"", this}};
  for (const auto& [name, child] : children_)
    for (const auto& [sub, m] : std::as_const(*child).named_modules())
      out.emplace_back(sub.empty() ? name : name + "." + sub, m);
  return out;
}

int64_t Module::parameter_count() const {
  int64_t count = 0;
  for (const Tensor& p : parameters()) count += p.numel();
  return count;
}

int64_t Module::trainable_parameter_count() const {
  int64_t count = 0;
  for (const Tensor& p : parameters())
    if (p.requires_grad()) count += p.numel();
  return count;
}

NamedTensors Module::named_state() const {
  // PyTorch's order: per module, parameters then buffers, then the children.
  struct Walker {
    static void walk(const Module& m, const std::string& prefix, NamedTensors& out) {
      for (const auto& [name, tensor] : m.parameters_) out.emplace_back(prefix + name, tensor.detach());
      for (const Buffer& b : m.buffers_)
        if (b.persistent) out.emplace_back(prefix + b.name, b.tensor.detach());
      for (const auto& [name, child] : m.children_) walk(*child, prefix + name + ".", out);
    }
  };
  NamedTensors out;
  Walker::walk(*this, "", out);
  return out;
}

StateDict Module::state_dict() const {
  StateDict out;
  for (auto& [name, tensor] : named_state()) out.emplace(name, tensor);
  return out;
}

LoadResult Module::load_state_dict(const StateDict& state, bool strict) {
  const NamedTensors own = named_state();
  LoadResult result;
  std::vector<std::string> mismatches;
  std::set<std::string> own_names;
  for (const auto& [name, dst] : own) {
    own_names.insert(name);
    auto it = state.find(name);
    if (it == state.end()) {
      result.missing_keys.push_back(name);
      continue;
    }
    const Tensor& src = it->second;
    LOUPE_CHECK(src.defined(), "load_state_dict: tensor '", name, "' is undefined");
    if (src.shape() != dst.shape())
      mismatches.push_back("'" + name + "': checkpoint " + shape_str(src.shape()) + ", model " + shape_str(dst.shape()));
  }
  for (const auto& [name, tensor] : state)
    if (!own_names.count(name)) result.unexpected_keys.push_back(name);

  if (!mismatches.empty()) {
    std::string text;
    for (size_t i = 0; i < mismatches.size() && i < 12; ++i) text += (i ? "; " : "") + mismatches[i];
    if (mismatches.size() > 12) text += "; ... and " + std::to_string(mismatches.size() - 12) + " more";
    LOUPE_CHECK(false, "load_state_dict: size mismatch for ", text);
  }
  if (strict && (!result.missing_keys.empty() || !result.unexpected_keys.empty())) {
    std::string text;
    if (!result.missing_keys.empty())
      text += "missing keys (" + std::to_string(result.missing_keys.size()) + "): " + key_list(result.missing_keys);
    if (!result.unexpected_keys.empty())
      text += std::string(text.empty() ? "" : "; ") + "unexpected keys (" +
              std::to_string(result.unexpected_keys.size()) + "): " + key_list(result.unexpected_keys);
    LOUPE_CHECK(false, "load_state_dict: ", text);
  }
  for (const auto& [name, src] : state) {
    LOUPE_CHECK(src.device().is_cpu(), "load_state_dict: tensor '", name, "' is on ", src.device(), ", expected cpu");
  }
  // Everything checked: copy. Raw copies record no graph, so parameters stay leaves.
  for (const auto& [name, dst] : own) {
    auto it = state.find(name);
    if (it != state.end()) ops::copy_(dst, it->second);
  }
  return result;
}

void Module::train(bool training) {
  training_ = training;
  for (auto& [name, child] : children_) child->train(training);
}

void Module::to(Device device) {
  for (const auto& [name, m] : named_modules()) {
    for (auto& [pname, p] : m->parameters_) {
      if (p.device() != device) p.set_data(ops::to_device(p, device));
      const Tensor g = p.grad();
      if (g.defined() && g.device() != device) p.set_grad(ops::to_device(g, device));
    }
    for (Buffer& b : m->buffers_) {
      if (b.tensor.device() != device) b.tensor.set_data(ops::to_device(b.tensor, device));
    }
  }
}

Device Module::device() const {
  for (const auto& [name, p] : named_parameters()) return p.device();
  for (const auto& [name, b] : named_buffers()) return b.device();
  return Device::cpu();
}

void Module::zero_grad() {
  for (Tensor& p : parameters()) p.set_grad(Tensor());
}

std::string Module::summary(const Shape& input_shape, int max_depth) {
  std::unordered_map<const Module*, std::string> names;
  for (const auto& [name, m] : std::as_const(*this).named_modules()) names.emplace(m, name);

  SummaryRecorder recorder;
  const bool was_training = is_training();
  eval();
  {
    NoGradGuard no_grad;
    SummaryRecorder* previous = active_recorder;
    active_recorder = &recorder;
    try {
      (*this)(zeros(input_shape));
    } catch (...) {
      active_recorder = previous;
      train(was_training);
      throw;
    }
    active_recorder = previous;
  }
  train(was_training);

  struct Line {
    std::string name, type, shape, params;
  };
  std::vector<Line> lines{{"Layer", "Type", "Output shape", "Params"}};
  for (const SummaryRow& row : recorder.rows) {
    if (max_depth >= 0 && row.depth > max_depth) continue;
    auto it = names.find(row.module);
    std::string name = it == names.end() ? "(unregistered)" : it->second.empty() ? "(model)" : it->second;
    lines.push_back({std::string(2 * row.depth, ' ') + name, row.module->type_name(),
                     row.done ? shape_str(row.output) : "?", with_commas(row.module->parameter_count())});
  }
  size_t w[4] = {0, 0, 0, 0};
  for (const Line& l : lines) {
    w[0] = std::max(w[0], l.name.size());
    w[1] = std::max(w[1], l.type.size());
    w[2] = std::max(w[2], l.shape.size());
    w[3] = std::max(w[3], l.params.size());
  }
  std::ostringstream out;
  const size_t total_width = w[0] + w[1] + w[2] + w[3] + 6;
  for (size_t i = 0; i < lines.size(); ++i) {
    const Line& l = lines[i];
    out << std::left << std::setw(static_cast<int>(w[0])) << l.name << "  " << std::setw(static_cast<int>(w[1]))
        << l.type << "  " << std::setw(static_cast<int>(w[2])) << l.shape << "  " << std::right
        << std::setw(static_cast<int>(w[3])) << l.params << "\n";
    if (i == 0) out << std::string(total_width, '-') << "\n";
  }
  out << std::string(total_width, '-') << "\n";
  out << "Input shape: " << shape_str(input_shape) << "\n";
  out << "Total parameters: " << with_commas(parameter_count()) << "\n";
  out << "Trainable parameters: " << with_commas(trainable_parameter_count()) << "\n";
  return out.str();
}

}  // namespace loupe::nn
