#include "eval_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include "nsamp/core/error.h"
#include "nsamp/samplers/metrics.h"

#if NSAMP_HAVE_CAIRO
#include <cairo.h>
#endif

namespace nsamp::apps {

#if !NSAMP_HAVE_CAIRO

bool plots_available() { return false; }
void write_eval_plot(const targets::Target&, const samplers::EvalReport&, const std::string& path, Context&) {
  NSAMP_FAIL("eval: cannot write ", path, ": this build has no Cairo (install libcairo2-dev and rebuild)");
}

#else

bool plots_available() { return true; }

namespace {

struct Box {
  double x, y, w, h;      // pixel rectangle of the plot area
  double x0, x1, y0, y1;  // data range
  double px(double v) const { return x + (v - x0) / (x1 - x0) * w; }
  double py(double v) const { return y + h - (v - y0) / (y1 - y0) * h; }
};

std::string fmt(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.3g", v);
  return b;
}

// "Nice" tick step: 1, 2 or 5 times a power of ten, about n ticks over the range.
double tick_step(double lo, double hi, int n) {
  const double raw = (hi - lo) / n, p = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * p >= raw) return m * p;
  return 10 * p;
}

void text(cairo_t* cr, double x, double y, const std::string& s, double size, double align = 0.0) {
  cairo_set_font_size(cr, size);
  cairo_text_extents_t e;
  cairo_text_extents(cr, s.c_str(), &e);
  cairo_move_to(cr, x - align * e.width, y);
  cairo_show_text(cr, s.c_str());
}

void axes(cairo_t* cr, const Box& b, const std::string& title, const std::string& xlabel,
          const std::string& ylabel) {
  cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
  cairo_set_line_width(cr, 1.2);
  cairo_rectangle(cr, b.x, b.y, b.w, b.h);
  cairo_stroke(cr);
  const double sx = tick_step(b.x0, b.x1, 6), sy = tick_step(b.y0, b.y1, 6);
  for (double t = std::ceil(b.x0 / sx) * sx; t <= b.x1 + 1e-9 * sx; t += sx) {
    cairo_move_to(cr, b.px(t), b.y + b.h);
    cairo_line_to(cr, b.px(t), b.y + b.h + 5);
    cairo_stroke(cr);
    text(cr, b.px(t), b.y + b.h + 19, fmt(std::abs(t) < 1e-12 * sx ? 0.0 : t), 12, 0.5);
  }
  for (double t = std::ceil(b.y0 / sy) * sy; t <= b.y1 + 1e-9 * sy; t += sy) {
    cairo_move_to(cr, b.x - 5, b.py(t));
    cairo_line_to(cr, b.x, b.py(t));
    cairo_stroke(cr);
    text(cr, b.x - 8, b.py(t) + 4, fmt(std::abs(t) < 1e-12 * sy ? 0.0 : t), 12, 1.0);
  }
  text(cr, b.x + b.w / 2, b.y - 12, title, 15, 0.5);
  text(cr, b.x + b.w / 2, b.y + b.h + 40, xlabel, 13, 0.5);
  cairo_save(cr);
  cairo_translate(cr, b.x - 58, b.y + b.h / 2);
  cairo_rotate(cr, -M_PI / 2);
  text(cr, 0, 0, ylabel, 13, 0.5);
  cairo_restore(cr);
}

// Viridis-like ramp, t in [0, 1].
void ramp(double t, double& r, double& g, double& b) {
  static const double c[5][3] = {{0.267, 0.005, 0.329},
                                 {0.230, 0.322, 0.546},
                                 {0.128, 0.567, 0.551},
                                 {0.369, 0.789, 0.383},
                                 {0.993, 0.906, 0.144}};
  t = std::clamp(t, 0.0, 1.0) * 4;
  const int i = std::min(3, int(t));
  const double f = t - i;
  r = c[i][0] + f * (c[i + 1][0] - c[i][0]);
  g = c[i][1] + f * (c[i + 1][1] - c[i][1]);
  b = c[i][2] + f * (c[i + 1][2] - c[i][2]);
}

void density_panel(cairo_t* cr, const targets::Target& target, const samplers::EvalReport& r, const Box& b,
                   Context& ctx) {
  // log p = -E on a grid, shown in 12 bands over the top 20 nats (filled contours), band edges as lines.
  const int G = 320;
  std::vector<double> grid(std::size_t(G * G * 2));
  for (int i = 0; i < G; ++i)
    for (int j = 0; j < G; ++j) {
      grid[std::size_t((i * G + j) * 2)] = b.x0 + (j + 0.5) / G * (b.x1 - b.x0);
      grid[std::size_t((i * G + j) * 2 + 1)] = b.y1 - (i + 0.5) / G * (b.y1 - b.y0);
    }
  const Tensor xt = Tensor::from_vector(grid, Shape{G * G, 2}, ctx.device(), ctx);
  Tensor e = Tensor::empty(Shape{G * G}, DType::F64, ctx.device(), ctx);
  target.energy(xt, e, ctx);
  const std::vector<double> E = e.to_doubles(ctx);
  double emin = INFINITY;
  for (double v : E)
    if (std::isfinite(v)) emin = std::min(emin, v);
  const int bands = 12;
  const double span = 20.0;
  std::vector<int> level(E.size());
  for (std::size_t k = 0; k < E.size(); ++k) {
    const double t = std::isfinite(E[k]) ? 1.0 - (E[k] - emin) / span : 0.0;
    level[k] = std::clamp(int(std::floor(t * bands)), 0, bands);
  }
  const double cw = b.w / G, ch = b.h / G;
  for (int i = 0; i < G; ++i)
    for (int j = 0; j < G; ++j) {
      double R, Gc, B;
      ramp(double(level[std::size_t(i * G + j)]) / bands, R, Gc, B);
      cairo_set_source_rgb(cr, 0.35 + 0.65 * R, 0.35 + 0.65 * Gc, 0.35 + 0.65 * B);  // lightened under points
      cairo_rectangle(cr, b.x + j * cw, b.y + i * ch, cw + 0.6, ch + 0.6);
      cairo_fill(cr);
    }
  cairo_set_source_rgba(cr, 0.1, 0.1, 0.1, 0.55);
  cairo_set_line_width(cr, 0.8);
  for (int i = 0; i < G; ++i)
    for (int j = 0; j < G; ++j) {
      const int l = level[std::size_t(i * G + j)];
      if (j + 1 < G && level[std::size_t(i * G + j + 1)] != l) {
        cairo_move_to(cr, b.x + (j + 1) * cw, b.y + i * ch);
        cairo_line_to(cr, b.x + (j + 1) * cw, b.y + (i + 1) * ch);
      }
      if (i + 1 < G && level[std::size_t((i + 1) * G + j)] != l) {
        cairo_move_to(cr, b.x + j * cw, b.y + (i + 1) * ch);
        cairo_line_to(cr, b.x + (j + 1) * cw, b.y + (i + 1) * ch);
      }
    }
  cairo_stroke(cr);
  const std::size_t n = r.model.size() / 2, show = std::min<std::size_t>(n, 5000);
  cairo_set_source_rgba(cr, 0.85, 0.1, 0.1, 0.6);
  for (std::size_t k = 0; k < show; ++k) {
    const std::size_t s = k * n / show;
    const double x = r.model[2 * s], y = r.model[2 * s + 1];
    if (x < b.x0 || x > b.x1 || y < b.y0 || y > b.y1) continue;
    cairo_arc(cr, b.px(x), b.py(y), 1.6, 0, 2 * M_PI);
    cairo_fill(cr);
  }
  axes(cr, b,
       r.target + ": " + std::to_string(show) + " model samples over log p (bands of " + fmt(span / bands) +
           " nats)",
       "x0", "x1");
}

void histogram_panel(cairo_t* cr, const std::vector<double>& model, const std::vector<double>& ref, Box b,
                     const std::string& title, const std::string& xlabel) {
  const int bins = 80;
  std::vector<double> sorted(ref);
  std::sort(sorted.begin(), sorted.end());
  // Range: the reference's 0.1%-99.9% quantiles, widened 5%, so one far outlier does not flatten the plot.
  double lo = sorted[std::size_t(0.001 * double(sorted.size() - 1))];
  double hi = sorted[std::size_t(0.999 * double(sorted.size() - 1))];
  if (!(hi > lo)) hi = lo + 1;
  const double pad = 0.05 * (hi - lo);
  lo -= pad;
  hi += pad;
  auto hist = [&](const std::vector<double>& v) {
    std::vector<double> h(bins, 0.0);
    for (double x : v)
      if (x >= lo && x < hi) h[std::size_t(std::min(bins - 1, int((x - lo) / (hi - lo) * bins)))] += 1;
    const double width = (hi - lo) / bins;
    for (double& c : h) c = v.empty() ? 0 : c / (double(v.size()) * width);  // density over all values
    return h;
  };
  const std::vector<double> hm = hist(model), hr = hist(ref);
  double top = 0;
  for (int i = 0; i < bins; ++i) top = std::max({top, hm[std::size_t(i)], hr[std::size_t(i)]});
  b.x0 = lo;
  b.x1 = hi;
  b.y0 = 0;
  b.y1 = top > 0 ? 1.08 * top : 1;
  const double bw = b.w / bins;
  cairo_set_source_rgba(cr, 0.2, 0.4, 0.8, 0.45);
  for (int i = 0; i < bins; ++i) {
    const double v = hr[std::size_t(i)];
    cairo_rectangle(cr, b.x + i * bw, b.py(v), bw, b.y + b.h - b.py(v));
  }
  cairo_fill(cr);
  cairo_set_source_rgb(cr, 0.85, 0.15, 0.1);
  cairo_set_line_width(cr, 2);
  cairo_move_to(cr, b.x, b.py(0));
  for (int i = 0; i < bins; ++i) {
    cairo_line_to(cr, b.x + i * bw, b.py(hm[std::size_t(i)]));
    cairo_line_to(cr, b.x + (i + 1) * bw, b.py(hm[std::size_t(i)]));
  }
  cairo_line_to(cr, b.x + b.w, b.py(0));
  cairo_stroke(cr);
  axes(cr, b, title, xlabel, "density");
  // Legend.
  cairo_set_source_rgba(cr, 0.2, 0.4, 0.8, 0.45);
  cairo_rectangle(cr, b.x + b.w - 150, b.y + 12, 18, 10);
  cairo_fill(cr);
  cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
  text(cr, b.x + b.w - 126, b.y + 22, "reference", 12);
  cairo_set_source_rgb(cr, 0.85, 0.15, 0.1);
  cairo_move_to(cr, b.x + b.w - 150, b.y + 38);
  cairo_line_to(cr, b.x + b.w - 132, b.y + 38);
  cairo_stroke(cr);
  cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
  text(cr, b.x + b.w - 126, b.y + 42, "model", 12);
}

std::vector<double> column(const std::vector<double>& x, std::int64_t d, std::int64_t c) {
  std::vector<double> out;
  for (std::size_t i = std::size_t(c); i < x.size(); i += std::size_t(d)) out.push_back(x[i]);
  return out;
}

std::vector<double> finite(const std::vector<double>& v) {
  std::vector<double> out;
  for (double x : v)
    if (std::isfinite(x)) out.push_back(x);
  return out;
}

}  // namespace

void write_eval_plot(const targets::Target& target, const samplers::EvalReport& r, const std::string& path,
                     Context& ctx) {
  const bool two_d = r.dim == 2;
  const int W = two_d ? 760 : 1400, H = two_d ? 760 : 620;
  cairo_surface_t* surf = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, W, H);
  cairo_t* cr = cairo_create(surf);
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  if (two_d) {
    double lo[2] = {INFINITY, INFINITY}, hi[2] = {-INFINITY, -INFINITY};
    for (std::size_t i = 0; i < r.reference.size(); ++i) {
      lo[i % 2] = std::min(lo[i % 2], r.reference[i]);
      hi[i % 2] = std::max(hi[i % 2], r.reference[i]);
    }
    const double c0 = 0.5 * (lo[0] + hi[0]), c1 = 0.5 * (lo[1] + hi[1]);
    const double half = 0.55 * std::max(hi[0] - lo[0], hi[1] - lo[1]);
    density_panel(cr, target, r, {90, 50, 640, 640, c0 - half, c0 + half, c1 - half, c1 + half}, ctx);
  } else {
    histogram_panel(cr, finite(r.model_energy), finite(r.reference_energy), {90, 50, 560, 480, 0, 1, 0, 1},
                    r.target + ": energy", "E(x)");
    const targets::Particles p = target.particles();
    if (p.n > 0) {
      const std::int64_t nm = std::int64_t(r.model.size()) / r.dim,
                         nr = std::int64_t(r.reference.size()) / r.dim;
      histogram_panel(cr, samplers::metrics::interatomic_distances(r.model, nm, p.n, p.spatial),
                      samplers::metrics::interatomic_distances(r.reference, nr, p.n, p.spatial),
                      {790, 50, 560, 480, 0, 1, 0, 1}, r.target + ": interatomic distances", "|x_i - x_j|");
    } else {
      histogram_panel(cr, column(r.model, r.dim, 0), column(r.reference, r.dim, 0),
                      {790, 50, 560, 480, 0, 1, 0, 1}, r.target + ": first coordinate", "x0");
    }
  }
  cairo_destroy(cr);
  const std::string tmp = path + ".tmp";
  const cairo_status_t st = cairo_surface_write_to_png(surf, tmp.c_str());
  cairo_surface_destroy(surf);
  NSAMP_CHECK(st == CAIRO_STATUS_SUCCESS, "eval: cannot write ", path, ": ", cairo_status_to_string(st));
  NSAMP_CHECK(std::rename(tmp.c_str(), path.c_str()) == 0, "eval: cannot move ", tmp, " to ", path);
}

#endif

}  // namespace nsamp::apps
