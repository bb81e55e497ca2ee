// Targets: gradients against float64 finite differences (random points and the delicate spots), log Z by
// quadrature or closed form, exact samplers' moments, the reference sets' energies, invariances of the
// particle energies, CUDA against the CPU path, and bad input.
#include <cmath>
#include <fstream>

#include "nsamp/core/npy.h"
#include "nsamp/targets/reference.h"
#include "nsamp/targets/target.h"
#include "nsamp/targets/user_target.h"
#include "test_util.h"

using namespace nsamp;
using targets::make_target;
using targets::Target;

namespace {

std::vector<double> energies(const Target& t, const std::vector<double>& x, std::int64_t B, Context& ctx) {
  Tensor xt = Tensor::from_vector(x, Shape{B, t.dim()}, Device::cpu(), ctx);
  Tensor e = Tensor::empty(Shape{B}, DType::F64, ctx);
  t.energy(xt, e, ctx);
  return e.to_vector<double>(ctx);
}

// Central differences of E at each row of x, compared with energy_and_grad.
void check_gradient(const Target& t, const std::vector<double>& x, std::int64_t B, Context& ctx, double rtol,
                    const std::string& where) {
  const std::int64_t d = t.dim();
  Tensor xt = Tensor::from_vector(x, Shape{B, d}, Device::cpu(), ctx);
  Tensor e = Tensor::empty(Shape{B}, DType::F64, ctx), g = Tensor::empty(Shape{B, d}, DType::F64, ctx);
  t.energy_and_grad(xt, e, g, ctx);
  test::check_close(e.to_vector<double>(ctx), energies(t, x, B, ctx), 0, 0,
                    t.name() + ": energy() vs energy_and_grad()");
  std::vector<double> num(static_cast<std::size_t>(B * d));
  for (std::int64_t j = 0; j < d; ++j) {
    std::vector<double> up = x, down = x;
    std::vector<double> h(static_cast<std::size_t>(B));
    for (std::int64_t b = 0; b < B; ++b) {
      h[b] = 1e-6 * std::max(1.0, std::abs(x[b * d + j]));
      up[b * d + j] += h[b];
      down[b * d + j] -= h[b];
    }
    const std::vector<double> eu = energies(t, up, B, ctx), ed = energies(t, down, B, ctx);
    for (std::int64_t b = 0; b < B; ++b) num[b * d + j] = (eu[b] - ed[b]) / (2 * h[b]);
  }
  // Relative to each sample's largest gradient entry.
  const std::vector<double> an = g.to_vector<double>(ctx);
  std::vector<double> scaled_an(an.size()), scaled_num(num.size());
  for (std::int64_t b = 0; b < B; ++b) {
    double s = 1e-8;
    for (std::int64_t j = 0; j < d; ++j) s = std::max(s, std::abs(num[b * d + j]));
    for (std::int64_t j = 0; j < d; ++j) {
      scaled_an[b * d + j] = an[b * d + j] / s;
      scaled_num[b * d + j] = num[b * d + j] / s;
    }
  }
  test::check_close(scaled_an, scaled_num, 0, rtol, t.name() + ": gradient vs finite differences " + where);
}

std::vector<double> random_points(std::int64_t n, double scale, double shift, std::uint64_t seed) {
  Context host(Device::cpu(), seed);
  Tensor t = Tensor::empty(Shape{n}, DType::F64, host);
  fill_normal(t, host, shift, scale);
  return t.to_vector<double>(host);
}

std::string data_file(const std::string& name) { return std::string(NSAMP_SHARED_DATA_DIR) + "/" + name; }

}  // namespace

TEST_CASE("targets: every gradient matches float64 finite differences" * doctest::test_suite("cpu")) {
  Context ctx;
  struct Case {
    const char* name;
    double scale, shift;
  };
  const Case cases[] = {{"gmm40", 30, 0},        {"gmm120", 30, 0},      {"mog40-50d", 20, 0},
                        {"gmm9", 5, 0},          {"manywell32", 1.5, 0}, {"multiwell5", 1.5, 0},
                        {"multiwell50", 1.5, 0}, {"funnel10", 1.5, 0},   {"dw4", 2.5, 0},
                        {"lj13", 1.0, 0},        {"lj55", 1.8, 0}};
  std::uint64_t seed = 10;
  for (const Case& c : cases) {
    auto t = make_target(c.name);
    const std::int64_t B = 6;
    check_gradient(*t, random_points(B * t->dim(), c.scale, c.shift, ++seed), B, ctx, 1e-6,
                   "at random points");
  }
  auto g = make_target("gaussian", {7});
  check_gradient(*g, random_points(3 * 7, 1, 0, 99), 3, ctx, 1e-6, "at random points");
  // Delicate spots: LJ pairs close together (r = 0.8, 0.6), the funnel's neck and mouth (x0 = -8, +8).
  auto lj = make_target("lj13");
  std::vector<double> x = random_points(2 * 39, 1.2, 0, 5);
  for (int k = 0; k < 3; ++k) {
    x[3 + k] = x[k] + (k == 0 ? 0.8 : 0.0);
    x[39 + 3 + k] = x[39 + k] + (k == 1 ? 0.6 : 0.0);
  }
  check_gradient(*lj, x, 2, ctx, 1e-6, "with pairs at r = 0.8 and 0.6");
  auto funnel = make_target("funnel10");
  std::vector<double> f = random_points(2 * 10, 0.01, 0, 6);
  f[0] = -8.0;
  f[10] = 8.0;
  for (int i = 11; i < 20; ++i) f[static_cast<std::size_t>(i)] *= 50.0;
  check_gradient(*funnel, f, 2, ctx, 1e-6, "at x0 = -8 and +8");
}

TEST_CASE("targets: log Z by quadrature and closed forms" * doctest::test_suite("cpu")) {
  Context ctx;
  // 2-D quadrature of exp(-E) on a grid (midpoint rule; the integrands are smooth and vanish at the edges).
  for (auto [name, half] : {std::pair<const char*, double>{"gmm40", 60.0}, {"gmm9", 10.0}}) {
    auto t = make_target(name);
    const int n = 1200;
    const double h = 2 * half / n;
    std::vector<double> x;
    x.reserve(2 * n * n);
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j) {
        x.push_back(-half + (i + 0.5) * h);
        x.push_back(-half + (j + 0.5) * h);
      }
    double z = 0;
    for (double e : energies(*t, x, std::int64_t(n) * n, ctx)) z += std::exp(-e) * h * h;
    CAPTURE(name);
    CHECK(std::log(z) == doctest::Approx(*t->log_z()).epsilon(1e-6).scale(1.0));
  }
  // Many-Well: one pair by 1-D quadrature, times 16.
  double z1 = 0, zg = 0;
  for (int i = 0; i < 400000; ++i) {
    const double x = -8.0 + 16.0 * (i + 0.5) / 400000, dx = 16.0 / 400000;
    z1 += std::exp(-(x * x * x * x - 6 * x * x - 0.5 * x)) * dx;
    zg += std::exp(-0.5 * x * x) * dx;
  }
  CHECK(16 * std::log(z1 * zg) == doctest::Approx(164.6956753).epsilon(1e-8));
  CHECK(*make_target("manywell32")->log_z() == doctest::Approx(164.6956753).epsilon(1e-8));
  // MultiWell: m wells by 1-D quadrature, the rest Gaussian.
  for (auto [name, d, delta] :
       {std::tuple<const char*, int, double>{"multiwell5", 5, 4.0}, {"multiwell50", 50, 2.0}}) {
    double zw = 0;
    for (int i = 0; i < 400000; ++i) {
      const double x = -6.0 + 12.0 * (i + 0.5) / 400000;
      zw += std::exp(-(x * x - delta) * (x * x - delta)) * 12.0 / 400000;
    }
    CHECK(*make_target(name)->log_z() ==
          doctest::Approx(5 * std::log(zw) + 0.5 * (d - 5) * std::log(2 * M_PI)).epsilon(1e-9));
  }
  // Funnel: E is exactly minus the log-density of its generative definition (log Z = 0).
  auto funnel = make_target("funnel10");
  const std::vector<double> x = random_points(4 * 10, 1.5, 0, 17);
  const std::vector<double> e = energies(*funnel, x, 4, ctx);
  for (int b = 0; b < 4; ++b) {
    const double x0 = x[b * 10];
    double logp = -0.5 * x0 * x0 / 9 - 0.5 * std::log(2 * M_PI * 9);
    for (int i = 1; i < 10; ++i)
      logp += -0.5 * x[b * 10 + i] * x[b * 10 + i] * std::exp(-x0) - 0.5 * std::log(2 * M_PI * std::exp(x0));
    CHECK(e[b] == doctest::Approx(-logp).epsilon(1e-12));
  }
  CHECK(*funnel->log_z() == 0.0);
}

TEST_CASE("targets: exact samplers have the targets' means and variances" * doctest::test_suite("cpu")) {
  Context ctx(Device::cpu(), 21);
  const std::int64_t N = 200000;
  auto moments = [&](const char* name, int coord) {
    auto t = make_target(name);
    Tensor s = Tensor::empty(Shape{N, t->dim()}, DType::F64, ctx);
    t->sample(s, ctx);
    const std::vector<double> v = s.to_vector<double>(ctx);
    double m = 0, q = 0;
    for (std::int64_t b = 0; b < N; ++b) m += v[b * t->dim() + coord];
    m /= N;
    for (std::int64_t b = 0; b < N; ++b) q += std::pow(v[b * t->dim() + coord] - m, 2);
    return std::pair<double, double>{m, q / (N - 1)};
  };
  // Reference moments by 1-D quadrature of the marginal density.
  auto quad_moments = [](const std::function<double(double)>& f, double lo, double hi) {
    double z = 0, m1 = 0, m2 = 0;
    for (int i = 0; i < 200000; ++i) {
      const double x = lo + (hi - lo) * (i + 0.5) / 200000, w = f(x);
      z += w;
      m1 += w * x;
      m2 += w * x * x;
    }
    return std::pair<double, double>{m1 / z, m2 / z - (m1 / z) * (m1 / z)};
  };
  const auto mw =
      quad_moments([](double x) { return std::exp(-(x * x * x * x - 6 * x * x - 0.5 * x)); }, -6, 6);
  auto [m, v] = moments("manywell32", 0);
  CHECK(std::abs(m - mw.first) < 5 * std::sqrt(mw.second / N));
  CHECK(std::abs(v - mw.second) < 0.02 * mw.second);
  std::tie(m, v) = moments("manywell32", 1);
  CHECK(std::abs(m) < 5 / std::sqrt(double(N)));
  CHECK(std::abs(v - 1) < 0.02);
  const auto w4 = quad_moments([](double x) { return std::exp(-(x * x - 4) * (x * x - 4)); }, -6, 6);
  std::tie(m, v) = moments("multiwell5", 2);
  CHECK(std::abs(m - w4.first) < 5 * std::sqrt(w4.second / N));
  CHECK(std::abs(v - w4.second) < 0.02 * w4.second);
  std::tie(m, v) = moments("funnel10", 0);
  CHECK(std::abs(m) < 5 * 3 / std::sqrt(double(N)));
  CHECK(std::abs(v - 9) < 0.02 * 9);
  // GMM-40: mixture variance = s^2 + the variance of the means.
  auto gmm = make_target("gmm40");
  double mm = 0, vm = 0;
  for (const auto& mu : gmm->modes()) mm += mu[0] / 40;
  for (const auto& mu : gmm->modes()) vm += (mu[0] - mm) * (mu[0] - mm) / 40;
  std::tie(m, v) = moments("gmm40", 0);
  const double var = vm + std::pow(std::log1p(std::exp(1.0)), 2);
  CHECK(std::abs(m - mm) < 5 * std::sqrt(var / N));
  CHECK(std::abs(v - var) < 0.02 * var);
  CHECK_THROWS_WITH_AS(
      [&] {
        Tensor s = Tensor::empty(Shape{3, 8}, DType::F64, ctx);
        make_target("dw4")->sample(s, ctx);
      }(),
      doctest::Contains(
          "no exact sampler; use its reference samples (test_split_DW4.npy, or val_split_DW4.npy)"),
      Error);
}

TEST_CASE("targets: the GMM-40 means are the shared data file's" * doctest::test_suite("cpu")) {
  std::ifstream f(data_file("gmm40_means.csv"));
  if (!f.good()) {
    MESSAGE("skipped: gmm40_means.csv not present");
    return;
  }
  std::vector<double> csv;
  for (std::string line; std::getline(f, line);) {
    if (line.empty() || line[0] == '#') continue;
    const auto comma = line.find(',');
    csv.push_back(std::stod(line.substr(0, comma)));
    csv.push_back(std::stod(line.substr(comma + 1)));
  }
  std::vector<double> ours;
  for (const auto& m : make_target("gmm40")->modes()) ours.insert(ours.end(), m.begin(), m.end());
  test::check_close(ours, csv, 0, 0, "GMM-40 means");
}

TEST_CASE("targets: the multiwell modes are minima that exact samples fill evenly" *
          doctest::test_suite("cpu")) {
  Context ctx(Device::cpu(), 3);
  for (const std::string name : {"multiwell5", "multiwell50"}) {
    CAPTURE(name);
    auto t = make_target(name);
    const double delta = name == "multiwell5" ? 4.0 : 2.0;
    const std::vector<std::vector<double>> modes = t->modes();
    REQUIRE(modes.size() == 32);
    const std::int64_t d = t->dim();
    std::vector<double> at;
    for (const auto& m : modes) at.insert(at.end(), m.begin(), m.end());
    Tensor x = Tensor::from_vector(at, Shape{32, d}, Device::cpu(), ctx);
    Tensor e = Tensor::empty(Shape{32}, DType::F64, ctx), g = Tensor::empty(x.shape(), DType::F64, ctx);
    t->energy_and_grad(x, e, g, ctx);
    for (double v : g.to_vector<double>(ctx)) CHECK(std::abs(v) < 1e-12);  // stationary
    const std::vector<double> e0 = e.to_vector<double>(ctx);
    for (double v : e0) CHECK(v == doctest::Approx(e0[0]).epsilon(1e-14));  // equal depth: equal weights
    // A minimum: E rises along +-h on every coordinate.
    for (std::int64_t j = 0; j < d; ++j)
      for (double h : {1e-3, -1e-3}) {
        std::vector<double> p = modes[7];
        p[std::size_t(j)] += h;
        CHECK(energies(*t, p, 1, ctx)[0] > e0[7]);
      }
    // Exact samples: the nearest mode is the sign pattern of the first 5 coordinates; each of the 32 holds
    // N / 32 within 5 binomial standard deviations.
    const std::int64_t N = 64000;
    Tensor s = Tensor::empty(Shape{N, d}, DType::F64, ctx);
    t->sample(s, ctx);
    const std::vector<double> xs = s.to_vector<double>(ctx);
    std::vector<std::int64_t> count(32, 0);
    for (std::int64_t b = 0; b < N; ++b) {
      unsigned bits = 0;
      for (int i = 0; i < 5; ++i) bits |= (xs[std::size_t(b * d + i)] > 0 ? 1u : 0u) << i;
      ++count[bits];
    }
    const double share = double(N) / 32, sd = std::sqrt(share * (1 - 1.0 / 32));
    for (unsigned k = 0; k < 32; ++k) {
      CAPTURE(k);
      CHECK(modes[k][0] == (k & 1u ? std::sqrt(delta) : -std::sqrt(delta)));
      CHECK(std::abs(double(count[k]) - share) < 5 * sd);
    }
  }
}

TEST_CASE("targets: reference sets' mean energies and the LJ-13 virial - both splits" *
          doctest::test_suite("cpu")) {
  Context ctx;
  using targets::ReferenceSplit;
  for (auto [name, file, split, mean_e, tol] :
       {std::tuple<const char*, const char*, ReferenceSplit, double, double>{
            "dw4", "val_split_DW4.npy", ReferenceSplit::Validation, -22.4, 0.3},
        {"dw4", "test_split_DW4.npy", ReferenceSplit::Test, -22.4, 0.3},
        {"lj13", "val_split_LJ13-1000.npy", ReferenceSplit::Validation, -43.1, 0.5},
        {"lj13", "test_split_LJ13-1000.npy", ReferenceSplit::Test, -43.1, 0.5}}) {
    auto t = make_target(name);
    CHECK(targets::reference_file(*t, split) == file);
    if (!std::ifstream(data_file(file)).good()) {
      MESSAGE("skipped: " << file << " not present");
      continue;
    }
    Tensor x = targets::load_reference(*t, split, ctx, DType::F64);
    // Loaded mean-free: every sample's centre of mass is at the origin.
    const std::vector<double> xs = x.to_vector<double>(ctx);
    const int n = t->particles().n, D = t->particles().spatial;
    double worst = 0;
    for (std::int64_t b = 0; b < x.rows(); ++b)
      for (int k = 0; k < D; ++k) {
        double m = 0;
        for (int i = 0; i < n; ++i) m += xs[b * n * D + i * D + k];
        worst = std::max(worst, std::abs(m / n));
      }
    CHECK(worst < 1e-12);
    Tensor e = Tensor::empty(Shape{x.rows()}, DType::F64, ctx), g = Tensor::empty(x.shape(), DType::F64, ctx);
    t->energy_and_grad(x, e, g, ctx);
    double me = 0, virial = 0;
    const std::vector<double> ev = e.to_vector<double>(ctx), xv = x.to_vector<double>(ctx),
                              gv = g.to_vector<double>(ctx);
    for (double v : ev) me += v / double(ev.size());
    for (std::size_t i = 0; i < xv.size(); ++i) virial += xv[i] * gv[i] / double(ev.size());
    const std::string label = file;
    CAPTURE(label);
    MESSAGE(label << ": mean energy " << me << ", E[x . grad E] " << virial);
    CHECK(std::abs(me - mean_e) < tol);
    if (std::string(name) == "lj13") CHECK(std::abs(virial - 36.0) < 1.0);
  }
}

TEST_CASE("targets: particle energies are invariant under permutation - rotation and translation" *
          doctest::test_suite("cpu")) {
  Context ctx;
  for (const std::string name : {"dw4", "lj13", "lj55"}) {
    auto t = make_target(name);
    const int n = t->particles().n, D = t->particles().spatial;
    std::vector<double> x = random_points(t->dim(), 1.5, 0, 31);
    std::vector<double> perm(x.size()), rot(x.size()), shifted(x.size());
    for (int i = 0; i < n; ++i)
      for (int k = 0; k < D; ++k) {
        perm[((i * 7 + 3) % n) * D + k] = x[i * D + k];  // 7 is coprime with 4, 13 and 55
        shifted[i * D + k] = x[i * D + k] + 3.7 * (k + 1);
      }
    // A rotation with a reflection: (x, y[, z]) -> (c x - s y, s x + c y[, -z]).
    const double c = std::cos(0.7), s = std::sin(0.7);
    for (int i = 0; i < n; ++i) {
      rot[i * D] = c * x[i * D] - s * x[i * D + 1];
      rot[i * D + 1] = s * x[i * D] + c * x[i * D + 1];
      if (D == 3) rot[i * D + 2] = -x[i * D + 2];
    }
    std::vector<double> all = x;
    for (const auto* v : {&perm, &rot, &shifted}) all.insert(all.end(), v->begin(), v->end());
    const std::vector<double> e = energies(*t, all, 4, ctx);
    CAPTURE(name);
    for (int k = 1; k < 4; ++k) CHECK(std::abs(e[k] - e[0]) <= 1e-10 * std::max(1.0, std::abs(e[0])));
  }
}

NSAMP_DEVICE_TEST("targets: this backend in float32 agrees with the CPU path in float64") {
  Context ctx(dev, 4);
  for (const std::string& name : targets::target_names()) {
    auto t = make_target(name, {6});
    const std::int64_t B = 300, d = t->dim();
    // Mixtures are evaluated near their modes, where samplers put points: far from every mode the float32
    // log-weights of a 50-D mixture lose ~1e-3 absolutely and near-ties between components swing the
    // gradient.
    std::vector<double> x;
    if (t->has_sampler() && !t->modes().empty()) {
      Context host(Device::cpu(), 5);
      Tensor s = Tensor::empty(Shape{B, d}, DType::F64, host);
      t->sample(s, host);
      x = s.to_vector<double>(host);
    } else {
      x = random_points(B * d, name == "lj13" || name == "lj55" ? 1.5 : 1.2, 0, 77);
    }
    Tensor x64 = Tensor::from_vector(x, Shape{B, d}, Device::cpu(), ctx);
    Tensor e64 = Tensor::empty(Shape{B}, DType::F64, Device::cpu(), ctx),
           g64 = Tensor::empty(Shape{B, d}, DType::F64, Device::cpu(), ctx);
    t->energy_and_grad(x64, e64, g64, ctx);
    Tensor x32 = test::from_doubles(x, Shape{B, d}, DType::F32, dev, ctx);
    Tensor e32 = Tensor::empty(Shape{B}, DType::F32, ctx), g32 = Tensor::empty(Shape{B, d}, DType::F32, ctx);
    t->energy_and_grad(x32, e32, g32, ctx);
    // float32 inputs are rounded, so compare against the float64 energy of the rounded inputs.
    Tensor xr = Tensor::from_vector(test::to_doubles(x32, ctx), Shape{B, d}, Device::cpu(), ctx);
    t->energy_and_grad(xr, e64, g64, ctx);
    const std::vector<double> er = e64.to_vector<double>(ctx), gr = g64.to_vector<double>(ctx);
    double escale = 0, gscale = 0;
    for (double v : er) escale = std::max(escale, std::abs(v));
    for (double v : gr) gscale = std::max(gscale, std::abs(v));
    test::check_close(test::to_doubles(e32, ctx), er, 1e-4, 1e-5 * escale, name + " energy");
    test::check_close(test::to_doubles(g32, ctx), gr, 1e-3, 1e-5 * gscale, name + " gradient");
  }
}

TEST_CASE("targets: bad input is reported clearly and NaN rows stay in their row" *
          doctest::test_suite("cpu")) {
  Context ctx;
  CHECK_THROWS_WITH_AS(make_target("gmm41"), doctest::Contains("unknown name 'gmm41' (valid: gmm40, gmm120"),
                       Error);
  CHECK_THROWS_WITH_AS(make_target("gaussian"), doctest::Contains("needs a dimension"), Error);
  auto t = make_target("gmm40");
  Tensor x = Tensor::zeros(Shape{3, 3}, DType::F64, ctx), e = Tensor::empty(Shape{3}, DType::F64, ctx);
  CHECK_THROWS_WITH_AS(t->energy(x, e, ctx),
                       doctest::Contains("energy(gmm40): x must be [B, 2], got float64[3, 3]"), Error);
  Tensor x2 = test::from_doubles({0, 0, NAN, 1, INFINITY, 0}, Shape{3, 2}, DType::F64, Device::cpu(), ctx);
  Tensor g = Tensor::empty(Shape{3, 2}, DType::F64, ctx);
  t->energy_and_grad(x2, e, g, ctx);
  const std::vector<double> ev = e.to_vector<double>(ctx);
  CHECK(std::isfinite(ev[0]));
  CHECK(std::isnan(ev[1]));
  CHECK(ev[2] == INFINITY);  // an infinite coordinate: zero density, as energy() alone says too
  Tensor e_only = Tensor::empty(Shape{3}, DType::F64, ctx);
  t->energy(x2, e_only, ctx);
  CHECK(e_only.to_vector<double>(ctx)[2] == INFINITY);
  Tensor wrong = Tensor::empty(Shape{2}, DType::F64, ctx);
  CHECK_THROWS_WITH_AS(t->energy(x2, wrong, ctx), doctest::Contains("e must hold 3 float64 values"), Error);
}

namespace {
// A user energy as an embedding code writes it (member templates cannot live in a local class).
struct Quartic {
  template <class T>
  NSAMP_HD T eval(const T* x, T* g) const {
    T e = 0;
    for (int i = 0; i < 3; ++i) {
      e += x[i] * x[i] * x[i] * x[i];
      if (g) g[i] = T(4) * x[i] * x[i] * x[i];
    }
    return e;
  }
};
}  // namespace

TEST_CASE("targets: user energies plug in as functors and callbacks" * doctest::test_suite("cpu")) {
  Context ctx;
  targets::FunctorTarget<Quartic> f("quartic", 3, Quartic{});
  targets::CallbackTarget c("quartic-callback", 3,
                            [](const double* x, std::int64_t B, std::int64_t d, double* e, double* g) {
                              for (std::int64_t b = 0; b < B; ++b)
                                e[b] = Quartic{}.eval(x + b * d, g ? g + b * d : nullptr);
                            });
  check_gradient(f, random_points(5 * 3, 1.0, 0, 3), 5, ctx, 1e-6, "(functor)");
  check_gradient(c, random_points(5 * 3, 1.0, 0, 4), 5, ctx, 1e-6, "(callback)");
  // float32 tensors through the float64 callback.
  Tensor x = test::randn(Shape{4, 3}, DType::F32, Device::cpu(), ctx, 9);
  Tensor e1 = Tensor::empty(Shape{4}, DType::F32, ctx), e2 = Tensor::empty(Shape{4}, DType::F32, ctx);
  f.energy(x, e1, ctx);
  c.energy(x, e2, ctx);
  test::check_close(test::to_doubles(e2, ctx), test::to_doubles(e1, ctx), 1e-6, 0,
                    "float32 through the callback");
  CHECK_THROWS_WITH_AS(targets::CallbackTarget("bad", 0, nullptr),
                       doctest::Contains("dimension must be positive"), Error);
  // A particle structure that does not tile the dimension would make the per-particle clip of the Monte
  // Carlo score run past a row.
  auto cb = [](const double*, std::int64_t, std::int64_t, double*, double*) {};
  CHECK_THROWS_WITH_AS(targets::CallbackTarget("bad", 8, cb, targets::Particles{3, 3}),
                       doctest::Contains("3 particles of 3 coordinates do not tile dimension 8"), Error);
  CHECK_THROWS_WITH_AS(targets::CallbackTarget("bad", 8, cb, targets::Particles{4, 0}),
                       doctest::Contains("do not tile"), Error);
  CHECK_NOTHROW(targets::CallbackTarget("ok", 8, cb, targets::Particles{4, 2}));
}
