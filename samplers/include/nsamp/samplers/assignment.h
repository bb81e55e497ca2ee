// Exact linear assignment: the minimum-cost perfect matching of a dense n x n cost matrix, which is optimal
// transport between two equal-size sets with uniform weights (the x-W2 of ../shared/spec/metrics.md).
//
// The solver is Jonker-Volgenant (1987): column reduction, reduction transfer and two
// augmenting-row-reduction passes assign most rows cheaply; each remaining row is then assigned by a Dijkstra
// shortest augmenting path in reduced costs. The result is an exact optimum of the matrix it is given (no
// epsilon): the dual potentials certify it, and `assignment_duality_gap` checks that certificate
// independently.
//
// Optionally the solver starts from column potentials computed elsewhere (an auction on the GPU, say): rows
// whose column is tight under those potentials keep it and only the others are augmented. The result is
// exact whatever the quality of the start; a good start only makes it faster.
#pragma once

#include <cstdint>
#include <vector>

namespace nsamp::samplers {

struct Assignment {
  std::vector<std::int32_t> col_of_row;  // row i is matched to column col_of_row[i]
  std::vector<double> v;                 // column potentials: c_ij - v_j >= u_i with equality on the matching
  double cost = 0;                       // sum_i c[i][col_of_row[i]], summed in float64
  std::int64_t augmented_rows = 0;       // rows assigned by shortest augmenting paths (the expensive phase)
};

// How the potentials are initialised when no start is given:
//  - Auction: Bertsekas' forward auction (Gauss-Seidel, epsilon scaling down to 1e-6 * max|c| / n); its
//    prices are near-optimal duals, so few and short augmenting paths remain. ~10x faster than the
//    reductions on Euclidean costs (2000 points in 2-D: 0.24 s against 2.1 s on one core).
//  - Reductions: the paper's column reduction, reduction transfer and augmenting row reduction (the last is
//    capped at n row visits per pass: on real-valued costs it can otherwise fight tiny price wars).
enum class AssignmentStart { Auction, Reductions };

// cost: row-major n x n, every entry finite (throws otherwise, naming the first bad entry). T = float or
// double; potentials and sums are float64. start_v (size n, optional) warm-starts the column potentials
// instead; start_cols (size n, optional, -1 = unassigned) proposes a matching to keep where it is tight.
template <class T>
Assignment solve_assignment(const T* cost, std::int64_t n, AssignmentStart start = AssignmentStart::Auction,
                            const std::vector<double>* start_v = nullptr,
                            const std::vector<std::int32_t>* start_cols = nullptr);

// The forward auction alone (Gauss-Seidel, min-cost form: person i takes argmin_j c_ij + p_j), from zero
// prices through epsilon phases cmax/4, /7, ... down to eps_final. Returns the prices and the final
// eps_final-optimal matching; solve_assignment(..., &v = -prices, &cols) makes it exact.
template <class T>
void auction_assignment(const T* cost, std::int64_t n, double eps_final, std::vector<double>& prices,
                        std::vector<std::int32_t>& col_of_row);

// The LP duality gap of an assignment with its potentials: sum_i c[i][col(i)] - (sum_i u_i + sum_j v_j) with
// u_i = min_j (c_ij - v_j), which makes (u, v) dual feasible. The gap is >= 0 for any matching and 0 (up to
// rounding) exactly when the matching is optimal. Throws when col_of_row is not a permutation.
template <class T>
double assignment_duality_gap(const T* cost, std::int64_t n, const Assignment& a);

}  // namespace nsamp::samplers
