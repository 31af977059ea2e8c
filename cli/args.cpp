// Option parsing. See args.hpp.
#include "cli/args.hpp"

#include <cmath>
#include <sstream>

#include "tensor/error.hpp"

namespace loupe::cli {

Args::Args(const std::vector<OptionSpec>& specs, int argc, char** argv, int first) {
  for (const auto& spec : specs) values_[spec.name] = spec.fallback;
  for (int i = first; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      help_ = true;
      continue;
    }
    LOUPE_CHECK(arg.rfind("--", 0) == 0, "unexpected argument '", arg, "' (options start with --)");
    std::string name = arg.substr(2);
    std::string value;
    const size_t eq = name.find('=');
    const bool inline_value = eq != std::string::npos;
    if (inline_value) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    const OptionSpec* spec = nullptr;
    for (const auto& s : specs) {
      if (s.name == name) spec = &s;
    }
    LOUPE_CHECK(spec != nullptr, "unknown option --", name, " (see --help)");
    given_.insert(name);
    if (spec->value.empty()) {
      values_.insert_or_assign(name, std::string(1, '1'));  // not = "1": GCC 12 -Wrestrict false positive
    } else {
      if (!inline_value) {
        LOUPE_CHECK(i + 1 < argc, "option --", name, " needs a value (", spec->value, ")");
        value = argv[++i];
      }
      values_[name] = value;
    }
  }
}

std::string Args::get(const std::string& name) const {
  auto it = values_.find(name);
  return it == values_.end() ? "" : it->second;
}

int64_t Args::get_int(const std::string& name) const {
  const std::string v = get(name);
  try {
    size_t used = 0;
    const int64_t n = std::stoll(v, &used);
    if (used == v.size()) return n;
  } catch (...) {
  }
  throw Error("option --" + name + ": expected an integer, got '" + v + "'");
}

double Args::get_double(const std::string& name) const {
  const std::string v = get(name);
  try {
    size_t used = 0;
    const double d = std::stod(v, &used);
    if (used == v.size() && std::isfinite(d)) return d;
  } catch (...) {
  }
  throw Error("option --" + name + ": expected a finite number, got '" + v + "'");
}

bool Args::flag(const std::string& name) const { return get(name) == "1"; }

std::string usage(const std::string& command, const std::string& summary, const std::vector<OptionSpec>& specs) {
  std::ostringstream out;
  out << "usage: loupe " << command << " [options]\n\n" << summary << "\n\noptions:\n";
  for (const auto& s : specs) {
    std::string left = "  --" + s.name + (s.value.empty() ? "" : " " + s.value);
    // A long option name gets its text on the next line rather than running into it.
    if (left.size() >= 26) {
      left += "\n" + std::string(26, ' ');
    } else {
      left.append(26 - left.size(), ' ');
    }
    out << left << s.help;
    if (!s.fallback.empty() && !s.value.empty()) out << " (default " << s.fallback << ")";
    out << "\n";
  }
  out << "  --help                  show this help\n";
  return out.str();
}

}  // namespace loupe::cli
