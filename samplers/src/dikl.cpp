#include "nsamp/samplers/dikl.h"

#include <cmath>

#include "device_values.h"
#include "nsamp/autograd/ops.h"
#include "nsamp/core/fill.h"
#include "nsamp/kernels/dikl.h"

namespace nsamp::samplers {

std::vector<double> at_levels(const std::vector<double>& table, const std::vector<int>& t) {
  std::vector<double> out(t.size());
  for (std::size_t i = 0; i < t.size(); ++i) {
    NSAMP_CHECK(t[i] >= 1 && t[i] < int(table.size()), "DiKL: noise index ", t[i], " outside 1 .. ",
                table.size() - 1);
    out[i] = table[std::size_t(t[i])];
  }
  return out;
}

Tensor schedule_table(const DiklSchedule& sch, Context& ctx) {
  std::vector<double> v = sch.alpha;
  v.insert(v.end(), sch.sigma.begin(), sch.sigma.end());
  v.insert(v.end(), sch.weight.begin(), sch.weight.end());
  return detail::device_values(v, Shape{3, sch.levels()}, DType::F64, ctx);
}

DiklLevels draw_levels(const Tensor& table, std::int64_t B, DType dtype, Context& ctx) {
  Tensor u = Tensor::empty(Shape{B}, DType::F64, ctx);
  fill_uniform(u, ctx);
  DiklLevels l{Tensor::empty(Shape{B, 1}, dtype, ctx), Tensor::empty(Shape{B, 1}, dtype, ctx),
               Tensor::empty(Shape{B, 1}, dtype, ctx), Tensor::empty(Shape{B, 1}, dtype, ctx)};
  kernels::dikl_levels(u, table, l.time, l.alpha, l.sigma, l.weight, ctx);
  return l;
}

DiklLevels levels_at(const DiklSchedule& sch, const std::vector<int>& t, DType dtype, Context& ctx) {
  const std::vector<double> tv(t.begin(), t.end());
  return {detail::device_column(tv, dtype, ctx), detail::device_column(at_levels(sch.alpha, t), dtype, ctx),
          detail::device_column(at_levels(sch.sigma, t), dtype, ctx),
          detail::device_column(at_levels(sch.weight, t), dtype, ctx)};
}

ag::Var diffuse(ag::Tape& tp, const ag::Var& x, const DiklLevels& l, const Tensor& eps) {
  const Tensor& xv = x.value();
  NSAMP_CHECK(xv.rank() == 2 && l.alpha.defined() && l.alpha.shape() == Shape({xv.rows(), 1}) &&
                  eps.shape() == xv.shape(),
              "DiKL: x ", xv.desc(), ", eps ", eps.desc(), " and the levels ",
              l.alpha.defined() ? l.alpha.desc() : "(undefined)", " do not agree");
  return ag::add(tp, ag::mul(tp, x, ag::Var::leaf(l.alpha)),
                 ag::mul(tp, ag::Var::leaf(eps), ag::Var::leaf(l.sigma)));
}

ag::Var diffuse(ag::Tape& tp, const ag::Var& x, const DiklSchedule& sch, const std::vector<int>& t,
                const Tensor& eps, Context& ctx) {
  const Tensor& xv = x.value();
  NSAMP_CHECK(xv.rank() == 2 && std::int64_t(t.size()) == xv.rows() && eps.shape() == xv.shape(), "DiKL: x ",
              xv.desc(), ", eps ", eps.desc(), " and ", t.size(), " noise indices do not agree");
  return diffuse(tp, x, levels_at(sch, t, xv.dtype(), ctx), eps);
}

DiklSchedule DiklSchedule::make(double start, double end, bool weight_inv_alpha, int levels) {
  NSAMP_CHECK(levels >= 2 && start > 0 && end >= start && end < 1,
              "DiKL schedule: need 0 < start <= end < 1 ", "and at least 2 levels, got ", start, ", ", end,
              ", ", levels);
  DiklSchedule s;
  double abar = 1;
  for (int i = 0; i < levels; ++i) {
    abar *= 1 - (start + (end - start) * i / (levels - 1));
    s.alpha.push_back(std::sqrt(abar));
    s.sigma.push_back(std::sqrt(1 - abar));
    s.weight.push_back(weight_inv_alpha ? 1 / std::sqrt(abar) : 1.0);
  }
  return s;
}

ag::Var dsm_loss(ag::Tape& tp, const ScoreFn& score, const Tensor& x, const DiklLevels& l,
                 const Tensor& eps) {
  const ag::Var xt = diffuse(tp, ag::Var::leaf(x), l, eps);
  const ag::Var r = ag::add(tp, ag::Var::leaf(eps),
                            ag::mul(tp, score(tp, ag::Var::leaf(l.time), xt), ag::Var::leaf(l.sigma)));
  return ag::mean(tp, ag::sq_norm_rows(tp, r));
}

ag::Var dsm_loss(ag::Tape& tp, const ScoreFn& score, const DiklSchedule& sch, const Tensor& x,
                 const std::vector<int>& t, const Tensor& eps, Context& ctx) {
  NSAMP_CHECK(x.rank() == 2 && std::int64_t(t.size()) == x.rows(), "DiKL: x ", x.desc(), " and ", t.size(),
              " noise indices do not agree");
  return dsm_loss(tp, score, x, levels_at(sch, t, x.dtype(), ctx), eps);
}

ag::Var generator_surrogate(ag::Tape& tp, const ag::Var& xt, const Tensor& c) {
  NSAMP_CHECK(c.shape() == xt.value().shape(), "DiKL: the cotangent ", c.desc(), " must match x_t ",
              xt.value().desc());
  return ag::mean(tp, ag::sum_rows(tp, ag::mul(tp, xt, ag::Var::leaf(c))));
}

}  // namespace nsamp::samplers
