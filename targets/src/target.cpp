// The Target base: argument checks and dispatch shared by every target.
#include "nsamp/targets/target.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "nsamp/core/config.h"
#include "nsamp/core/fill.h"

namespace nsamp::targets {

void check_particles(const std::string& who, std::int64_t dim, Particles p) {
  NSAMP_CHECK(
      (p.n == 0 && p.spatial == 0) || (p.n > 0 && p.spatial > 0 && std::int64_t(p.n) * p.spatial == dim), who,
      ": ", p.n, " particles of ", p.spatial, " coordinates do not tile dimension ", dim);
}

namespace {
void check_batch(const char* op, const Target& t, const Tensor& x, Context& ctx) {
  check_defined(op, x, "x");
  check_on_context(op, x, ctx);
  NSAMP_CHECK(is_floating(x.dtype()), op, "(", t.name(), "): x must be float32 or float64, got ", x.desc());
  NSAMP_CHECK(x.rank() == 2 && x.cols() == t.dim(), op, "(", t.name(), "): x must be [B, ", t.dim(),
              "], got ", x.desc());
}
}  // namespace

void Target::energy(const Tensor& x, Tensor& e, Context& ctx) const {
  check_batch("energy", *this, x, ctx);
  NSAMP_CHECK(e.defined() && e.numel() == x.rows() && e.dtype() == x.dtype() && e.device() == x.device(),
              "energy(", name(), "): e must hold ", x.rows(), " ", dtype_name(x.dtype()), " values on ",
              x.device().str(), ", got ", e.desc());
  NSAMP_CHECK(!e.same_storage(x), "energy(", name(), "): x and e must be separate buffers");
  if (x.rows() == 0) return;
  evaluate(x, e, nullptr, ctx);
}

void Target::energy_and_grad(const Tensor& x, Tensor& e, Tensor& grad, Context& ctx) const {
  check_batch("energy_and_grad", *this, x, ctx);
  NSAMP_CHECK(e.defined() && e.numel() == x.rows() && e.dtype() == x.dtype() && e.device() == x.device(),
              "energy_and_grad(", name(), "): e must hold ", x.rows(), " ", dtype_name(x.dtype()),
              " values on ", x.device().str(), ", got ", e.desc());
  NSAMP_CHECK(
      grad.defined() && grad.shape() == x.shape() && grad.dtype() == x.dtype() && grad.device() == x.device(),
      "energy_and_grad(", name(), "): grad must match x ", x.desc(), ", got ", grad.desc());
  NSAMP_CHECK(!grad.same_storage(x) && !e.same_storage(x) && !e.same_storage(grad), "energy_and_grad(",
              name(), "): x, e and grad must be separate buffers");
  if (x.rows() == 0) return;
  evaluate(x, e, &grad, ctx);
}

void Target::sample(Tensor& out, Context& ctx) const {
  check_batch("sample", *this, out, ctx);
  NSAMP_CHECK(has_sampler(), "sample(", name(), "): this target has no exact sampler",
              reference_file().empty() ? ""
                                       : "; use its reference samples (" + test_reference_file() + ", or " +
                                             reference_file() + ")");
  if (out.rows() == 0) return;
  draw(out, ctx);
}

bool Target::mala_step_fused(const MalaStepArgs& m, Context& ctx) const {
  const char* op = "mala_step_fused";
  check_batch(op, *this, m.x, ctx);
  for (const Tensor* t : {&m.grad, &m.y, &m.gy})
    NSAMP_CHECK(t->defined() && t->shape() == m.x.shape() && t->dtype() == m.x.dtype() &&
                    t->device() == m.x.device() && !t->same_storage(m.x),
                op, "(", name(), "): state and scratch must be separate tensors like x ", m.x.desc(),
                ", got ", t->desc());
  for (const Tensor* t : {&m.e, &m.accepted})
    NSAMP_CHECK(
        t->defined() && t->numel() == m.x.rows() && t->dtype() == m.x.dtype() && t->device() == m.x.device(),
        op, "(", name(), "): per-chain tensors must hold ", m.x.rows(), " values like x, got ", t->desc());
  NSAMP_CHECK(m.step.valid(), op, "(", name(), "): step must be positive, got ", m.step.value);
  if (m.tilt.active())
    for (const Tensor* t : {&m.tilt.xt, &m.tilt.a, &m.tilt.c})
      NSAMP_CHECK(t->defined() && t->dtype() == m.x.dtype() && t->device() == m.x.device() &&
                      t->numel() == (t == &m.tilt.xt ? m.x.numel() : m.x.rows()),
                  op, "(", name(), "): tilt tensor ", t->desc(), " does not match the chains ", m.x.desc());
  if (m.x.rows() == 0) return true;
  return fused_mala(m, ctx);
}

namespace {

// The unfused estimator, for targets without a fused pass (host callbacks): chunks of points, their K
// perturbations each materialised and evaluated in one energy_and_grad call, then the same streaming
// accumulation. Chunks hold a multiple of 4 points, so each chunk's noise starts on a counter boundary of
// the [B K, d] fill and the draws match the fused pass.
template <class T>
void mc_score_chunked(const Target& t, const McScoreArgs& a, Context& ctx) {
  const std::int64_t B = a.x.rows(), d = a.x.cols(), K = a.K;
  const std::int64_t P = std::max<std::int64_t>(4, (65536 / std::max<std::int64_t>(K, 1)) / 4 * 4);
  const DType dt = a.x.dtype();
  const T *x = a.x.data<T>(), *sigma = a.sigma.data<T>();
  T* score = a.score.data<T>();
  T* log_p = a.log_p.defined() ? a.log_p.data<T>() : nullptr;
  std::vector<T> v(static_cast<std::size_t>(d), T(0));
  for (std::int64_t p0 = 0; p0 < B; p0 += P) {
    const std::int64_t n = std::min(P, B - p0), rows = n * K;
    Tensor y = Tensor::empty(Shape{rows, d}, dt, ctx), e = Tensor::empty(Shape{rows}, dt, ctx),
           g = Tensor::empty(Shape{rows, d}, dt, ctx);
    fill_normal_at(y, a.draws.seed,
                   philox::Offset(a.draws.noise + std::uint64_t(p0 * K * d) / philox::values_per_counter<T>(),
                                  a.draws.base),
                   ctx);
    T* py = y.data<T>();
    for (std::int64_t r = 0; r < rows; ++r) {
      const std::int64_t b = p0 + r / K;
      for (std::int64_t j = 0; j < d; ++j) py[r * d + j] = x[b * d + j] + sigma[b] * py[r * d + j];
    }
    t.energy_and_grad(y, e, g, ctx);
    const T *pe = e.data<T>(), *pg = g.data<T>();
    for (std::int64_t i = 0; i < n; ++i) {
      kernels::ScoreAcc<T> acc = kernels::ScoreAcc<T>::init(v.data(), d);
      for (std::int64_t k = 0; k < K; ++k) acc.push(-pe[i * K + k], pg + (i * K + k) * d, T(-1), v.data(), d);
      const std::int64_t b = p0 + i;
      const T lp =
          kernels::mc_score_finish(acc, v.data(), K, d, T(a.clip_max), a.particle_dim, score + b * d);
      if (log_p) log_p[b] = lp;
    }
  }
}

}  // namespace

void Target::mc_score(const Tensor& x, const Tensor& sigma, std::int64_t K, double clip_max, Tensor& score,
                      Tensor* log_p, Context& ctx, const philox::Offset* noise) const {
  const char* op = "mc_score";
  check_batch(op, *this, x, ctx);
  NSAMP_CHECK(K >= 1, op, "(", name(), "): K must be at least 1, got ", K);
  NSAMP_CHECK(std::isfinite(clip_max), op, "(", name(), "): clip must be finite, got ", clip_max);
  for (const Tensor* t : {&sigma, static_cast<const Tensor*>(log_p)})
    if (t)
      NSAMP_CHECK(
          t->defined() && t->numel() == x.rows() && t->dtype() == x.dtype() && t->device() == x.device(), op,
          "(", name(), "): sigma and log_p must hold ", x.rows(), " values like x ", x.desc(), ", got ",
          t->desc());
  NSAMP_CHECK(score.defined() && score.shape() == x.shape() && score.dtype() == x.dtype() &&
                  score.device() == x.device() && !score.same_storage(x) && !score.same_storage(sigma),
              op, "(", name(), "): score must be a separate tensor like x ", x.desc(), ", got ",
              score.desc());
  McScoreArgs a{x, sigma, K, clip_max, particles().spatial, score, log_p ? *log_p : Tensor(), {}};
  a.draws.seed = ctx.seed();
  if (noise) {
    a.draws.noise = noise->offset;
    a.draws.base = noise->base;
  } else {
    a.draws.noise = ctx.reserve_rng(rng_counters(x.rows() * K * x.cols(), x.dtype()));
  }
  if (x.rows() == 0 || fused_mc_score(a, ctx)) return;
  NSAMP_CHECK(x.device().is_cpu(), op, "(", name(), "): this target has no fused estimator on ",
              x.device().str(), "; give host tensors");
  if (x.dtype() == DType::F32)
    mc_score_chunked<float>(*this, a, ctx);
  else
    mc_score_chunked<double>(*this, a, ctx);
}

void Target::draw(Tensor&, Context&) const { NSAMP_FAIL("sample(", name(), "): no exact sampler"); }

}  // namespace nsamp::targets
