#include <algorithm>
#include <functional>
#include <string>

#include "runtime/kernels_internal.h"

namespace memplan {

namespace {
const kernels::Table& table() {
  static const kernels::Table t = [] {
    kernels::Table t;
    kernels::register_elementwise(t);
    kernels::register_data(t);
    kernels::register_nn(t);
    kernels::register_optim(t);
    return t;
  }();
  return t;
}
kernels::Table& overrides() {
  static kernels::Table t;
  return t;
}
}  // namespace

ScopedKernelOverride::ScopedKernelOverride(std::string_view op, KernelFn fn) : op_(op) {
  overrides()[op_] = fn;
}
ScopedKernelOverride::~ScopedKernelOverride() { overrides().erase(op_); }

KernelFn find_kernel(std::string_view op) {
  if (auto o = overrides().find(op); o != overrides().end()) return o->second;
  auto it = table().find(op);
  return it == table().end() ? nullptr : it->second;
}

std::vector<std::string_view> kernel_ops() {
  std::vector<std::string_view> r;
  for (const auto& [k, v] : table()) r.push_back(k);
  return r;
}

uint64_t node_rng_key(const Node& n) {
  auto it = n.attrs.find("rng_key");
  std::string key = it != n.attrs.end() && std::holds_alternative<std::string>(it->second)
                        ? std::get<std::string>(it->second)
                        : n.name;
  // FNV-1a: stable across platforms and runs (std::hash is not guaranteed to be).
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : key) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

}  // namespace memplan
