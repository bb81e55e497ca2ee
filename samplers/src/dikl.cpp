#include "nsamp/samplers/dikl.h"

#include <cmath>

#include "device_values.h"
#include "nsamp/autograd/ops.h"

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

ag::Var diffuse(ag::Tape& tp, const ag::Var& x, const DiklSchedule& sch, const std::vector<int>& t,
                const Tensor& eps, Context& ctx) {
  const Tensor& xv = x.value();
  NSAMP_CHECK(xv.rank() == 2 && std::int64_t(t.size()) == xv.rows() && eps.shape() == xv.shape(), "DiKL: x ",
              xv.desc(), ", eps ", eps.desc(), " and ", t.size(), " noise indices do not agree");
  const ag::Var a = ag::Var::leaf(detail::device_column(at_levels(sch.alpha, t), xv.dtype(), ctx));
  const ag::Var s = ag::Var::leaf(detail::device_column(at_levels(sch.sigma, t), xv.dtype(), ctx));
  return ag::add(tp, ag::mul(tp, x, a), ag::mul(tp, ag::Var::leaf(eps), s));
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

ag::Var dsm_loss(ag::Tape& tp, const ScoreFn& score, const DiklSchedule& sch, const Tensor& x,
                 const std::vector<int>& t, const Tensor& eps, Context& ctx) {
  const ag::Var xt = diffuse(tp, ag::Var::leaf(x), sch, t, eps, ctx);
  std::vector<double> tv(t.begin(), t.end());
  const ag::Var time = ag::Var::leaf(detail::device_column(tv, x.dtype(), ctx));
  const ag::Var s = ag::Var::leaf(detail::device_column(at_levels(sch.sigma, t), x.dtype(), ctx));
  const ag::Var r = ag::add(tp, ag::Var::leaf(eps), ag::mul(tp, score(tp, time, xt), s));
  return ag::mean(tp, ag::sq_norm_rows(tp, r));
}

ag::Var generator_surrogate(ag::Tape& tp, const ag::Var& xt, const Tensor& c) {
  NSAMP_CHECK(c.shape() == xt.value().shape(), "DiKL: the cotangent ", c.desc(), " must match x_t ",
              xt.value().desc());
  return ag::mean(tp, ag::sum_rows(tp, ag::mul(tp, xt, ag::Var::leaf(c))));
}

}  // namespace nsamp::samplers
