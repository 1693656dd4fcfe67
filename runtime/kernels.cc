#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <string>

#include "compiler/low_precision.h"
#include "runtime/kernels_internal.h"
#include "runtime/low_precision_run.h"

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

namespace {

bool is_low(DType d) { return d == DType::f16 || d == DType::bf16; }

float from_bits(uint32_t b) {
  float f;
  std::memcpy(&f, &b, sizeof f);
  return f;
}

}  // namespace

float low_bits_to_f32(DType d, uint16_t h) {
  if (d == DType::bf16) return from_bits(static_cast<uint32_t>(h) << 16);
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  if (exp == 0x1f) return from_bits(sign | 0x7f800000u | (mant << 13)); // inf, NaN
  if (exp != 0) return from_bits(sign | ((exp + 112) << 23) | (mant << 13));
  const float sub = static_cast<float>(mant) * 0x1p-24f; // zero or subnormal: exact
  return sign ? -sub : sub;
}

uint16_t f32_to_low_bits(DType d, float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  const uint32_t ax = bits & 0x7fffffffu;
  if (d == DType::bf16) {
    if (ax > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40); // quiet NaN
    bits += 0x7fffu + ((bits >> 16) & 1u); // round to nearest even
    return static_cast<uint16_t>(bits >> 16);
  }
  const auto sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  if (ax > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u | ((ax >> 13) & 0x3ffu));
  // 65520 (0x477ff000) lies halfway between f16's largest 65504 (odd
  // mantissa) and 65536: ties to even round it, and all above, to infinity.
  if (ax >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);
  if (ax < 0x38800000u) { // below 2^-14: a multiple of 2^-24 (subnormal); 1024 carries to 2^-14
    const float m = std::nearbyint(from_bits(ax) * 0x1p24f); // exact scaling, nearest even
    return static_cast<uint16_t>(sign | static_cast<uint16_t>(m));
  }
  uint32_t h = (((ax >> 23) - 112) << 10) | ((ax >> 13) & 0x3ffu);
  const uint32_t rest = ax & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h; // a carry moves into the exponent
  return static_cast<uint16_t>(sign | h);
}

namespace {

void widen(const TensorArg& low, float* dst) {
  const auto* src = low.as<const uint16_t>();
  for (int64_t i = 0; i < low.numel; ++i) dst[i] = low_bits_to_f32(low.dtype, src[i]);
}

void narrow(const float* src, const TensorArg& low) {
  auto* dst = low.as<uint16_t>();
  for (int64_t i = 0; i < low.numel; ++i) dst[i] = f32_to_low_bits(low.dtype, src[i]);
}

}  // namespace

bool is_low_precision(const TensorArg& t) { return t.present() && is_low(t.dtype); }

std::optional<KernelArgs> stage_low_precision(const KernelArgs& a) {
  KernelArgs b = a;
  auto* ws = static_cast<uint8_t*>(a.workspace);
  int64_t used = 0;
  auto stage = [&](TensorArg& t) {
    const int64_t bytes = low_precision_slot_bytes(t.numel);
    if (!ws || used + bytes > a.workspace_bytes) return false;
    t.data = ws + used;
    t.dtype = DType::f32;
    used += bytes;
    return true;
  };
  for (size_t i = 0; i < b.in.size(); ++i)
    if (is_low_precision(a.in[i]) && !stage(b.in[i])) return std::nullopt;
  for (size_t o = 0; o < b.out.size(); ++o) {
    if (!is_low_precision(a.out[o])) continue;
    if (!stage(b.out[o])) return std::nullopt;
    for (size_t i = 0; i < a.in.size(); ++i)  // in-place: the output shares its input's copy
      if (a.in[i].data == a.out[o].data && is_low_precision(a.in[i])) b.out[o].data = b.in[i].data;
  }
  b.workspace = a.workspace_bytes > used ? ws + used : nullptr;
  b.workspace_bytes = a.workspace_bytes - used;
  return b;
}

void run_kernel(KernelFn k, const KernelArgs& a) {
  const bool staged = !op_handles_low_precision(a.node->op) &&
                      (std::any_of(a.in.begin(), a.in.end(), is_low_precision) ||
                       std::any_of(a.out.begin(), a.out.end(), is_low_precision));
  if (!staged) return k(a);
  const std::optional<KernelArgs> b = stage_low_precision(a);
  if (!b)
    throw InternalError(node_desc(*a.node) + ": the planned workspace (" +
                        std::to_string(a.workspace_bytes) +
                        " bytes) does not hold its f32 staging copies");
  for (size_t i = 0; i < a.in.size(); ++i)
    if (is_low_precision(a.in[i])) widen(a.in[i], b->in[i].as<float>());
  k(*b);
  for (size_t o = 0; o < a.out.size(); ++o)
    if (is_low_precision(a.out[o])) narrow(b->out[o].as<float>(), a.out[o]);
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
