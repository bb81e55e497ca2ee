// The elementwise family's float32 activation loops on the host (activation_cpu.cpp), vectorised through
// glibc's libmvec where the build found it. Element k's result depends on x[k] alone: not on k, n, the
// block it falls in or the thread count (every element, the tail included, goes through the same vector
// code), so that runs stay bit for bit reproducible whatever the partition.
#pragma once

#include <cstdint>

#include "nsamp/kernels/elementwise.h"

namespace nsamp::kernels::detail {

// y = act(x) over n elements; y may be x. The _serial form opens no OpenMP region (for callers that run
// inside one of their own); both give the same bits.
void activation_forward_f32(Activation act, std::int64_t n, const float* x, float* y);
void activation_forward_f32_serial(Activation act, std::int64_t n, const float* x, float* y);
// gx = gy * act'(x) over n elements; gx may be x or gy.
void activation_backward_f32(Activation act, std::int64_t n, const float* x, const float* gy, float* gx);
// z[r, c] += bias[c], then a = act(z), for an R x C row-major z; a may be z only for the identity.
void bias_activation_forward_f32(Activation act, std::int64_t R, std::int64_t C, const float* bias, float* z,
                                 float* a);

}  // namespace nsamp::kernels::detail
