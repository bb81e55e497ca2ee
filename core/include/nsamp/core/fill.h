// Fills: constants and Philox random numbers, on either backend. Element k of a random fill comes from
// counter offset + k / values_per_counter, so the same (seed, offset) gives the same tensor on the CPU and on
// CUDA.
#pragma once

#include <cstdint>

#include "nsamp/core/philox.h"
#include "nsamp/core/tensor.h"

namespace nsamp {

void fill_constant(Tensor& t, double value, Context& ctx);

// Uniform on (low, high) and normal N(mean, std^2), drawing counters from the context's RNG state.
void fill_uniform(Tensor& t, Context& ctx, double low = 0.0, double high = 1.0);
void fill_normal(Tensor& t, Context& ctx, double mean = 0.0, double stddev = 1.0);

// The same with an explicit (seed, counter offset); the context is only used for its stream. The offset
// may be read from memory when the fill runs (philox::Offset, core/rng_counter.h).
void fill_uniform_at(Tensor& t, std::uint64_t seed, philox::Offset offset, Context& ctx, double low = 0.0,
                     double high = 1.0);
void fill_normal_at(Tensor& t, std::uint64_t seed, philox::Offset offset, Context& ctx, double mean = 0.0,
                    double stddev = 1.0);

// Counters a random fill of `numel` elements of `dtype` consumes.
std::uint64_t rng_counters(std::int64_t numel, DType dtype);

namespace detail {
enum class FillKind { Uniform, Normal };
// Backend launchers (CPU in fill_cpu.cpp, CUDA in fill_cuda.cu). out = a * draw + b.
void fill_random_cpu(Tensor& t, FillKind kind, std::uint64_t seed, std::uint64_t offset, double a, double b);
void fill_random_cuda(Tensor& t, FillKind kind, std::uint64_t seed, philox::Offset offset, double a, double b,
                      Context& ctx);
void fill_constant_cuda(Tensor& t, double value, Context& ctx);
}  // namespace detail

}  // namespace nsamp
