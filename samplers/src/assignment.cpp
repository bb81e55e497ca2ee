// Jonker-Volgenant linear assignment (see assignment.h). Written from the paper's description: R. Jonker and
// A. Volgenant, "A shortest augmenting path algorithm for dense and sparse linear assignment problems",
// Computing 38 (1987). Reduced costs are c_ij - v_j; row potentials stay implicit.
#include "nsamp/samplers/assignment.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "nsamp/core/error.h"
#include "nsamp/kernels/transport.h"

namespace nsamp::samplers {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

template <class T>
struct Solver {
  const T* c;
  std::int64_t n;
  std::vector<std::int32_t> x, y;  // x[i] = column of row i, y[j] = row of column j (-1 = free)
  std::vector<double> v;
  std::vector<std::int32_t> free_rows;

  double at(std::int64_t i, std::int64_t j) const { return double(c[i * n + j]); }
  const T* row(std::int64_t i) const { return c + i * n; }

  // Column reduction (v_j = min_i c_ij; each column tentatively to its cheapest row) and reduction transfer
  // (a row that won exactly one column lowers that column's potential to its second-best reduced cost, so
  // the augmenting-row-reduction passes can move it cheaply).
  void initialise() {
    std::vector<std::int32_t> argmin(static_cast<std::size_t>(n), 0);
    v.assign(static_cast<std::size_t>(n), kInf);
    for (std::int64_t i = 0; i < n; ++i) {  // row-major sweep; strict < keeps the first row on ties
      const T* r = row(i);
      for (std::int64_t j = 0; j < n; ++j)
        if (double(r[j]) < v[j]) {
          v[j] = double(r[j]);
          argmin[j] = std::int32_t(i);
        }
    }
    std::vector<std::int32_t> matches(static_cast<std::size_t>(n), 0);
    for (std::int64_t j = n - 1; j >= 0; --j) {
      const std::int32_t i = argmin[j];
      if (++matches[i] == 1) {
        x[i] = std::int32_t(j);
        y[j] = i;
      } else if (v[j] < v[x[i]]) {
        y[x[i]] = -1;
        x[i] = std::int32_t(j);
        y[j] = i;
      } else {
        y[j] = -1;
      }
    }
    for (std::int64_t i = 0; i < n; ++i) {
      if (matches[i] == 0) {
        free_rows.push_back(std::int32_t(i));
      } else if (matches[i] == 1) {
        const std::int32_t j1 = x[i];
        double m = kInf;
        const T* r = row(i);
        for (std::int64_t j = 0; j < n; ++j)
          if (j != j1) m = std::min(m, double(r[j]) - v[j]);
        if (m < kInf) v[j1] -= m;
      }
    }
  }

  // Augmenting row reduction: a free row takes its best column, lowering that column's potential to the
  // row's second-best reduced cost; the row it displaces is processed again at once when the potential
  // moved, later otherwise. Auction-like and cheap; two passes as in the paper.
  void augmenting_row_reduction() {
    for (int pass = 0; pass < 2 && !free_rows.empty(); ++pass) {
      std::vector<std::int32_t> todo;
      todo.swap(free_rows);
      std::size_t k = 0;
      std::int64_t visits = 0;
      while (k < todo.size()) {
        if (++visits > n) {  // cap: leave the rest to the augmenting paths
          free_rows.insert(free_rows.end(), todo.begin() + std::ptrdiff_t(k), todo.end());
          break;
        }
        const std::int32_t i = todo[k++];
        const T* r = row(i);
        double u1 = double(r[0]) - v[0], u2 = kInf;
        std::int32_t j1 = 0, j2 = -1;
        for (std::int64_t j = 1; j < n; ++j) {
          const double h = double(r[j]) - v[j];
          if (h < u2) {
            if (h >= u1) {
              u2 = h;
              j2 = std::int32_t(j);
            } else {
              u2 = u1;
              u1 = h;
              j2 = j1;
              j1 = std::int32_t(j);
            }
          }
        }
        std::int32_t i0 = y[j1];
        const bool lowered = u1 < u2 && u2 < kInf;
        if (lowered) {
          v[j1] -= u2 - u1;
        } else if (i0 >= 0 && j2 >= 0) {  // tie: take the runner-up column instead of displacing
          j1 = j2;
          i0 = y[j2];
        }
        if (i0 >= 0) x[i0] = -1;
        x[i] = j1;
        y[j1] = i;
        if (i0 >= 0) {
          if (lowered)
            todo[--k] = i0;
          else
            free_rows.push_back(i0);
        }
      }
    }
  }

  // Dijkstra in reduced costs from free row f until a free column is reached, then potentials of the
  // finalised columns are raised and the path is flipped. cols is partitioned as
  // [0, low) finalised | [low, up) at the current minimum, to scan | [up, n) not yet reached.
  void augment(std::int32_t f, std::vector<double>& d, std::vector<std::int32_t>& pred,
               std::vector<std::int32_t>& cols) {
    const T* rf = row(f);
    for (std::int64_t j = 0; j < n; ++j) {
      d[j] = double(rf[j]) - v[j];
      pred[j] = f;
      cols[j] = std::int32_t(j);
    }
    std::int64_t low = 0, up = 0, last = 0;
    double mn = 0;
    std::int32_t end = -1;
    while (end < 0) {
      if (up == low) {  // collect the columns at the new minimum distance
        last = low;
        mn = d[cols[up++]];
        for (std::int64_t k = up; k < n; ++k) {
          const std::int32_t j = cols[k];
          const double h = d[j];
          if (h <= mn) {
            if (h < mn) {
              up = low;
              mn = h;
            }
            cols[k] = cols[up];
            cols[up++] = j;
          }
        }
        for (std::int64_t k = low; k < up; ++k)
          if (y[cols[k]] < 0) {
            end = cols[k];
            break;
          }
        if (end >= 0) break;
      }
      const std::int32_t j1 = cols[low++];
      const std::int32_t i = y[j1];
      const T* r = row(i);
      const double h = double(r[j1]) - v[j1] - mn;
      for (std::int64_t k = up; k < n; ++k) {
        const std::int32_t j = cols[k];
        const double v2 = double(r[j]) - v[j] - h;
        if (v2 < d[j]) {
          pred[j] = i;
          d[j] = v2;
          if (v2 == mn) {
            if (y[j] < 0) {
              end = j;
              break;
            }
            cols[k] = cols[up];
            cols[up++] = j;
          }
        }
      }
    }
    for (std::int64_t k = 0; k < last; ++k) {  // columns finalised before the last minimum search
      const std::int32_t j = cols[k];
      v[j] += d[j] - mn;
    }
    std::int32_t i;
    do {
      i = pred[end];
      y[end] = i;
      std::swap(end, x[i]);
    } while (i != f);
  }
};

}  // namespace

template <class T>
void auction_assignment(const T* cost, std::int64_t n, double eps_final, std::vector<double>& prices,
                        std::vector<std::int32_t>& col_of_row) {
  NSAMP_CHECK(eps_final > 0 && std::isfinite(eps_final),
              "auction_assignment: eps_final must be positive, got ", eps_final);
  prices.assign(static_cast<std::size_t>(n), 0.0);
  col_of_row.assign(static_cast<std::size_t>(n), -1);
  if (n == 0) return;
  double cmax = 0;
  for (std::int64_t k = 0; k < n * n; ++k) cmax = std::max(cmax, std::abs(double(cost[k])));
  std::vector<std::int32_t> owner(static_cast<std::size_t>(n)), stack;
  double eps = std::max(cmax / 4, eps_final);
  for (;;) {
    std::fill(col_of_row.begin(), col_of_row.end(), -1);
    std::fill(owner.begin(), owner.end(), -1);
    stack.resize(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) stack[i] = std::int32_t(n - 1 - i);
    while (!stack.empty()) {
      const std::int32_t i = stack.back();
      stack.pop_back();
      const T* r = cost + std::int64_t(i) * n;
      kernels::BestTwo b = kernels::BestTwo::init();
      for (std::int64_t j = 0; j < n; ++j) b.push(double(r[j]) + prices[j], std::int32_t(j));
      const std::int32_t j1 = b.j1;
      prices[j1] = b.bid(prices[j1], eps, n);
      const std::int32_t prev = owner[j1];
      owner[j1] = i;
      col_of_row[i] = j1;
      if (prev >= 0) {
        col_of_row[prev] = -1;
        stack.push_back(prev);
      }
    }
    if (eps <= eps_final) break;
    eps = std::max(eps / 7, eps_final);
  }
}

template <class T>
Assignment solve_assignment(const T* cost, std::int64_t n, AssignmentStart start,
                            const std::vector<double>* start_v, const std::vector<std::int32_t>* start_cols) {
  NSAMP_CHECK(n >= 0 && n < std::numeric_limits<std::int32_t>::max(), "solve_assignment: bad size n = ", n);
  NSAMP_CHECK(n == 0 || cost != nullptr, "solve_assignment: null cost matrix for n = ", n);
  for (std::int64_t k = 0; k < n * n; ++k)
    NSAMP_CHECK(std::isfinite(double(cost[k])), "solve_assignment: cost[", k / n, "][", k % n,
                "] = ", cost[k], " is not finite");
  if (start_v)
    NSAMP_CHECK(std::int64_t(start_v->size()) == n, "solve_assignment: start_v has ", start_v->size(),
                " entries for n = ", n);
  if (start_cols)
    NSAMP_CHECK(std::int64_t(start_cols->size()) == n, "solve_assignment: start_cols has ",
                start_cols->size(), " entries for n = ", n);
  Solver<T> s{cost, n, {}, {}, {}, {}};
  s.x.assign(static_cast<std::size_t>(n), -1);
  s.y.assign(static_cast<std::size_t>(n), -1);
  if (n == 0) return {};
  std::vector<double> auction_v;
  std::vector<std::int32_t> auction_cols;
  if (!start_v && start == AssignmentStart::Auction && n > 1) {
    double cmax = 0;
    for (std::int64_t k = 0; k < n * n; ++k) cmax = std::max(cmax, std::abs(double(cost[k])));
    if (cmax > 0) {
      auction_assignment(cost, n, 1e-6 * cmax / double(n), auction_v, auction_cols);
      for (double& p : auction_v) p = -p;  // reduced cost c_ij - v_j with v = -prices
      start_v = &auction_v;
      start_cols = &auction_cols;
    }
  }
  if (start_v) {
    // Keep a proposed column only where it attains the row's minimum reduced cost (tight) and no earlier
    // row holds it; every other row is augmented. Dual feasibility needs nothing more: u is implicit.
    s.v = *start_v;
    for (double vj : s.v) NSAMP_CHECK(std::isfinite(vj), "solve_assignment: non-finite start potential ", vj);
    for (std::int64_t i = 0; i < n; ++i) {
      const std::int32_t j0 = start_cols ? (*start_cols)[i] : -1;
      bool keep = j0 >= 0 && j0 < n && s.y[j0] < 0;
      if (keep) {
        const T* r = s.row(i);
        const double h0 = double(r[j0]) - s.v[j0];
        for (std::int64_t j = 0; j < n && keep; ++j) keep = double(r[j]) - s.v[j] >= h0;
      }
      if (keep) {
        s.x[i] = j0;
        s.y[j0] = std::int32_t(i);
      } else {
        s.free_rows.push_back(std::int32_t(i));
      }
    }
  } else {
    s.initialise();
    s.augmenting_row_reduction();
  }
  Assignment a;
  a.augmented_rows = std::int64_t(s.free_rows.size());
  std::vector<double> d(static_cast<std::size_t>(n));
  std::vector<std::int32_t> pred(static_cast<std::size_t>(n)), cols(static_cast<std::size_t>(n));
  for (std::int32_t f : s.free_rows) s.augment(f, d, pred, cols);
  a.col_of_row = std::move(s.x);
  a.v = std::move(s.v);
  for (std::int64_t i = 0; i < n; ++i) a.cost += s.at(i, a.col_of_row[i]);
  return a;
}

template <class T>
double assignment_duality_gap(const T* cost, std::int64_t n, const Assignment& a) {
  NSAMP_CHECK(std::int64_t(a.col_of_row.size()) == n && std::int64_t(a.v.size()) == n,
              "assignment_duality_gap: assignment of size ", a.col_of_row.size(), " for n = ", n);
  std::vector<char> used(static_cast<std::size_t>(n), 0);
  double primal = 0, dual = std::accumulate(a.v.begin(), a.v.end(), 0.0);
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int32_t j = a.col_of_row[i];
    NSAMP_CHECK(j >= 0 && j < n && !used[j], "assignment_duality_gap: row ", i, " -> column ", j,
                " does not form a permutation");
    used[j] = 1;
    primal += double(cost[i * n + j]);
    double u = kInf;
    for (std::int64_t k = 0; k < n; ++k) u = std::min(u, double(cost[i * n + k]) - a.v[k]);
    dual += u;
  }
  return primal - dual;
}

template Assignment solve_assignment<float>(const float*, std::int64_t, AssignmentStart,
                                            const std::vector<double>*, const std::vector<std::int32_t>*);
template Assignment solve_assignment<double>(const double*, std::int64_t, AssignmentStart,
                                             const std::vector<double>*, const std::vector<std::int32_t>*);
template void auction_assignment<float>(const float*, std::int64_t, double, std::vector<double>&,
                                        std::vector<std::int32_t>&);
template void auction_assignment<double>(const double*, std::int64_t, double, std::vector<double>&,
                                         std::vector<std::int32_t>&);
template double assignment_duality_gap<float>(const float*, std::int64_t, const Assignment&);
template double assignment_duality_gap<double>(const double*, std::int64_t, const Assignment&);

}  // namespace nsamp::samplers
