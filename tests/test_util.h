// Helpers shared by the test suites: device-parametrised test cases, seeded inputs, float64 comparisons.
#pragma once

#include <doctest/doctest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "nsamp/core/fill.h"
#include "nsamp/core/tensor.h"

// NSAMP_DEVICE_TEST("name") { ... uses `dev` ... } registers the body twice: "cpu: name" in suite cpu with
// dev = CPU, and "gpu: name" in suite gpu with dev = cuda:0.
#define NSAMP_DEVICE_TEST_IMPL(fn, name)                                                \
  static void fn(::nsamp::Device dev);                                                  \
  TEST_CASE("cpu: " name* doctest::test_suite("cpu")) { fn(::nsamp::Device::cpu()); }   \
  TEST_CASE("gpu: " name* doctest::test_suite("gpu")) { fn(::nsamp::Device::cuda(0)); } \
  static void fn([[maybe_unused]] ::nsamp::Device dev)
#define NSAMP_DEVICE_TEST(name) NSAMP_DEVICE_TEST_IMPL(DOCTEST_ANONYMOUS(nsamp_device_test_), name)

namespace nsamp::test {

// A file name no other test process uses: CTest runs test cases as parallel processes in one directory, so
// a fixed name shared by two cases lets one read the other's half-written file.
inline std::string scratch_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          ("nsamp_test_" + std::to_string(static_cast<long>(::getpid())) + "_" + name))
      .string();
}

// Seeded random input made on the host (so CPU and GPU runs see identical values), then copied to `dev`.
inline Tensor randn(const Shape& shape, DType dtype, Device dev, Context& ctx, std::uint64_t seed,
                    double scale = 1.0, double shift = 0.0) {
  Context host(Device::cpu(), seed);
  Tensor t = Tensor::empty(shape, dtype, Device::cpu(), host);
  fill_normal(t, host, shift, scale);
  return t.to(dev, ctx);
}

inline Tensor from_doubles(const std::vector<double>& v, const Shape& shape, DType dtype, Device dev,
                           Context& ctx) {
  if (dtype == DType::F64) return Tensor::from_vector(v, shape, dev, ctx);
  return Tensor::from_vector(std::vector<float>(v.begin(), v.end()), shape, dev, ctx);
}

inline std::vector<double> to_doubles(const Tensor& t, Context& ctx) { return t.to_doubles(ctx); }

// The values of a list of parameters (ag::Var), concatenated in order.
template <class Params>
std::vector<double> flat_values(const Params& params, Context& ctx) {
  std::vector<double> out;
  for (const auto& p : params)
    for (double v : p.value().to_doubles(ctx)) out.push_back(v);
  return out;
}

// An int32 index tensor holding v.
inline Tensor index_tensor(const std::vector<std::int32_t>& v, Device d, Context& ctx) {
  return Tensor::from_vector(v, Shape{static_cast<std::int64_t>(v.size())}, d, ctx);
}

// Passes when |got - ref| <= atol + rtol * |ref| elementwise, with NaN matching NaN and infinities matching
// exactly. Reports the count and the worst element.
inline void check_close(const std::vector<double>& got, const std::vector<double>& ref, double rtol,
                        double atol, const std::string& what) {
  REQUIRE_MESSAGE(got.size() == ref.size(),
                  what << ": size " << got.size() << " vs reference " << ref.size());
  std::size_t bad = 0, worst = 0;
  double worst_excess = -1;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double g = got[i], r = ref[i];
    bool ok;
    double excess = 0;
    if (std::isnan(r) || std::isnan(g)) {
      ok = std::isnan(r) && std::isnan(g);
      excess = ok ? 0 : INFINITY;
    } else if (std::isinf(r) || std::isinf(g)) {
      ok = g == r;
      excess = ok ? 0 : INFINITY;
    } else {
      excess = std::abs(g - r) - (atol + rtol * std::abs(r));
      ok = excess <= 0;
    }
    if (!ok) ++bad;
    if (excess > worst_excess) {
      worst_excess = excess;
      worst = i;
    }
  }
  INFO(what << ": " << bad << " of " << got.size() << " elements outside rtol " << rtol << ", atol " << atol
            << "; worst at " << worst << ": got " << (got.empty() ? 0.0 : got[worst]) << ", reference "
            << (ref.empty() ? 0.0 : ref[worst]));
  CHECK(bad == 0);
}

// Tolerance for comparing a dtype's result with a float64 reference of elementwise math.
inline double elem_rtol(DType t) { return t == DType::F32 ? 2e-6 : 1e-13; }

// Runs `op` on `dev` and compares with the float64 reference; on a GPU also compares with the CPU path.
inline void check_backend(Device dev, const std::function<std::vector<double>(Device)>& op,
                          const std::vector<double>& ref, double rtol, double atol, const std::string& what) {
  const std::vector<double> got = op(dev);
  check_close(got, ref, rtol, atol, what + " vs float64 reference on " + dev.str());
  if (dev.is_cuda()) check_close(got, op(Device::cpu()), rtol, atol, what + ": cuda vs cpu path");
}

inline const char* dtype_label(DType t) { return dtype_name(t); }

}  // namespace nsamp::test
