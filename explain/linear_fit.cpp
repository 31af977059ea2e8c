// Weighted least squares (pivoted QR, minimum norm) and weighted Lasso (coordinate descent).
// See linear_fit.hpp for the objectives.
#include "explain/linear_fit.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace loupe::explain {

namespace {

// A column-major float64 matrix: a(i, j) = data[i + j * rows].
struct Matrix {
  int64_t rows = 0, cols = 0;
  std::vector<double> data;
  Matrix(int64_t r, int64_t c) : rows(r), cols(c), data(static_cast<size_t>(r * c), 0.0) {}
  double& operator()(int64_t i, int64_t j) { return data[static_cast<size_t>(i + j * rows)]; }
  double operator()(int64_t i, int64_t j) const { return data[static_cast<size_t>(i + j * rows)]; }
  double* col(int64_t j) { return data.data() + j * rows; }
};

// The regression data as float64 host matrices, centred and scaled by sqrt(weight) row by row.
struct Problem {
  int64_t n = 0, m = 0, t = 0;
  Matrix a{0, 0};                    // (n, M) sqrt(w) (x - x_bar)
  Matrix b{0, 0};                    // (n, T) sqrt(w) (y - y_bar)
  std::vector<double> x_bar, y_bar;  // (M), (T); zeros without an intercept
};

Problem load(const Tensor& x, const Tensor& y, const Tensor& weights, bool fit_intercept, bool rescale_to_n,
             const char* name) {
  LOUPE_CHECK(x.defined() && x.dim() == 2, name, ": x must be (n, M), got ",
              x.defined() ? shape_str(x.shape()) : "undefined");
  LOUPE_CHECK(y.defined() && (y.dim() == 1 || y.dim() == 2) && y.size(0) == x.size(0), name,
              ": y must be (n) or (n, T) with n = ", x.size(0), ", got ",
              y.defined() ? shape_str(y.shape()) : "undefined");
  LOUPE_CHECK(x.size(0) >= 1 && x.size(1) >= 1, name, ": empty problem ", shape_str(x.shape()));
  Problem p;
  p.n = x.size(0);
  p.m = x.size(1);
  p.t = y.dim() == 1 ? 1 : y.size(1);
  const std::vector<double> xv = to_vector<double>(x), yv = to_vector<double>(y);
  std::vector<double> w(static_cast<size_t>(p.n), 1.0);
  if (weights.defined()) {
    LOUPE_CHECK(weights.dim() == 1 && weights.size(0) == p.n, name, ": weights must be (", p.n, "), got ",
                shape_str(weights.shape()));
    w = to_vector<double>(weights);
  }
  double w_sum = 0.0;
  for (double wi : w) {
    LOUPE_CHECK(std::isfinite(wi) && wi >= 0.0, name, ": weights must be finite and >= 0, got ", wi);
    w_sum += wi;
  }
  LOUPE_CHECK(w_sum > 0.0, name, ": the weights sum to zero");
  for (double v : xv) LOUPE_CHECK(std::isfinite(v), name, ": x holds a non-finite value ", v);
  for (double v : yv) LOUPE_CHECK(std::isfinite(v), name, ": y holds a non-finite value ", v);

  p.x_bar.assign(static_cast<size_t>(p.m), 0.0);
  p.y_bar.assign(static_cast<size_t>(p.t), 0.0);
  if (fit_intercept) {
    for (int64_t i = 0; i < p.n; ++i) {
      const double wi = w[static_cast<size_t>(i)] / w_sum;
      for (int64_t j = 0; j < p.m; ++j) p.x_bar[static_cast<size_t>(j)] += wi * xv[static_cast<size_t>(i * p.m + j)];
      for (int64_t k = 0; k < p.t; ++k) p.y_bar[static_cast<size_t>(k)] += wi * yv[static_cast<size_t>(i * p.t + k)];
    }
  }
  // scikit-learn's Lasso rescales the weights to sum to n (its penalty is then alpha * n).
  const double scale = rescale_to_n ? static_cast<double>(p.n) / w_sum : 1.0;
  p.a = Matrix(p.n, p.m);
  p.b = Matrix(p.n, p.t);
  for (int64_t i = 0; i < p.n; ++i) {
    const double s = std::sqrt(w[static_cast<size_t>(i)] * scale);
    for (int64_t j = 0; j < p.m; ++j)
      p.a(i, j) = s * (xv[static_cast<size_t>(i * p.m + j)] - p.x_bar[static_cast<size_t>(j)]);
    for (int64_t k = 0; k < p.t; ++k)
      p.b(i, k) = s * (yv[static_cast<size_t>(i * p.t + k)] - p.y_bar[static_cast<size_t>(k)]);
  }
  return p;
}

LinearFit make_fit(const Problem& p, const std::vector<double>& coef /* (T, M) row-major */) {
  LinearFit fit;
  std::vector<double> intercept(static_cast<size_t>(p.t));
  for (int64_t k = 0; k < p.t; ++k) {
    double b = p.y_bar[static_cast<size_t>(k)];
    for (int64_t j = 0; j < p.m; ++j) b -= p.x_bar[static_cast<size_t>(j)] * coef[static_cast<size_t>(k * p.m + j)];
    intercept[static_cast<size_t>(k)] = b;
  }
  fit.coef = from_values(coef, {p.t, p.m}, DType::f64);
  fit.intercept = from_values(intercept, {p.t}, DType::f64);
  return fit;
}

// Householder reflector for column segment v (length len): on return v holds the reflector
// direction (v = x - alpha e1) and the function returns alpha (the new leading entry), so that
// (I - 2 v v^T / v^T v) x = alpha e1. Returns 0 for a zero segment (no reflection).
double householder(double* v, int64_t len, double& v_norm2) {
  double norm2 = 0.0;
  for (int64_t i = 0; i < len; ++i) norm2 += v[i] * v[i];
  if (norm2 == 0.0) {
    v_norm2 = 0.0;
    return 0.0;
  }
  const double alpha = v[0] >= 0.0 ? -std::sqrt(norm2) : std::sqrt(norm2);
  v[0] -= alpha;
  v_norm2 = norm2 - 2.0 * alpha * (v[0] + alpha) + alpha * alpha;  // ||x - alpha e1||^2
  return alpha;
}

// Applies I - 2 v v^T / v_norm2 to a column segment c (length len).
void reflect(const double* v, double v_norm2, double* c, int64_t len) {
  if (v_norm2 == 0.0) return;
  double dot = 0.0;
  for (int64_t i = 0; i < len; ++i) dot += v[i] * c[i];
  const double f = 2.0 * dot / v_norm2;
  for (int64_t i = 0; i < len; ++i) c[i] -= f * v[i];
}

}  // namespace

LinearFit weighted_least_squares(const Tensor& x, const Tensor& y, const Tensor& weights, bool fit_intercept) {
  Problem p = load(x, y, weights, fit_intercept, false, "weighted_least_squares");
  const int64_t n = p.n, m = p.m, t = p.t, steps = std::min(n, m);
  Matrix& a = p.a;
  Matrix& b = p.b;
  std::vector<int64_t> perm(static_cast<size_t>(m));
  std::iota(perm.begin(), perm.end(), 0);
  std::vector<double> r_diag(static_cast<size_t>(steps), 0.0);

  // QR with column pivoting: step k moves the remaining column of largest norm to position k,
  // reflects rows k.. so that column k is zero below the diagonal, and applies the same
  // reflection to b. The reflector stays in a(k.., k); its diagonal goes to r_diag[k].
  int64_t rank = 0;
  for (int64_t k = 0; k < steps; ++k) {
    int64_t best = k;
    double best_norm = -1.0;
    for (int64_t j = k; j < m; ++j) {
      double s = 0.0;
      for (int64_t i = k; i < n; ++i) s += a(i, j) * a(i, j);
      if (s > best_norm) {
        best_norm = s;
        best = j;
      }
    }
    if (best != k) {
      std::swap_ranges(a.col(k), a.col(k) + n, a.col(best));
      std::swap(perm[static_cast<size_t>(k)], perm[static_cast<size_t>(best)]);
    }
    const double cutoff = std::numeric_limits<double>::epsilon() * static_cast<double>(std::max(n, m)) *
                          std::abs(r_diag.empty() || k == 0 ? std::sqrt(best_norm) : r_diag[0]);
    if (std::sqrt(best_norm) <= cutoff || best_norm == 0.0) break;  // the rest is numerically zero
    double v_norm2 = 0.0;
    r_diag[static_cast<size_t>(k)] = householder(a.col(k) + k, n - k, v_norm2);
    for (int64_t j = k + 1; j < m; ++j) reflect(a.col(k) + k, v_norm2, a.col(j) + k, n - k);
    for (int64_t c = 0; c < t; ++c) reflect(a.col(k) + k, v_norm2, b.col(c) + k, n - k);
    rank = k + 1;
  }

  // R = [R11 R12] (rank x M, upper part of a with r_diag on the diagonal); c = (Q^T b)[:rank].
  auto r_at = [&](int64_t i, int64_t j) { return i == j ? r_diag[static_cast<size_t>(i)] : a(i, j); };
  std::vector<double> coef(static_cast<size_t>(t * m), 0.0);
  if (rank == 0) {  // every column is (numerically) zero: the minimum-norm solution is 0
    LinearFit fit = make_fit(p, coef);
    fit.rank = 0;
    return fit;
  }
  // Minimum-norm solution of [R11 R12] z = c: QR of K = [R11 R12]^T (M x rank) = Q2 R2, so
  // R2^T u = c (forward substitution) and z = Q2 [u; 0]. Full rank (rank == M) gives z = R11^-1 c.
  Matrix kmat(m, rank);
  for (int64_t i = 0; i < rank; ++i) {
    for (int64_t j = i; j < m; ++j) kmat(j, i) = r_at(i, j);
  }
  std::vector<double> k_diag(static_cast<size_t>(rank)), k_vnorm(static_cast<size_t>(rank));
  for (int64_t k = 0; k < rank; ++k) {
    k_diag[static_cast<size_t>(k)] = householder(kmat.col(k) + k, m - k, k_vnorm[static_cast<size_t>(k)]);
    for (int64_t j = k + 1; j < rank; ++j)
      reflect(kmat.col(k) + k, k_vnorm[static_cast<size_t>(k)], kmat.col(j) + k, m - k);
  }
  for (int64_t c = 0; c < t; ++c) {
    // R2 is upper triangular (rank x rank): R2(i, j) = kmat(i, j) above the diagonal, k_diag on it.
    std::vector<double> z(static_cast<size_t>(m), 0.0);
    for (int64_t i = 0; i < rank; ++i) {  // R2^T u = c
      double s = b(i, c);
      for (int64_t j = 0; j < i; ++j) s -= kmat(j, i) * z[static_cast<size_t>(j)];
      z[static_cast<size_t>(i)] = s / k_diag[static_cast<size_t>(i)];
    }
    for (int64_t k = rank - 1; k >= 0; --k) {  // z = Q2 [u; 0] = H_0 ... H_{rank-1} [u; 0]
      reflect(kmat.col(k) + k, k_vnorm[static_cast<size_t>(k)], z.data() + k, m - k);
    }
    for (int64_t j = 0; j < m; ++j)
      coef[static_cast<size_t>(c * m + perm[static_cast<size_t>(j)])] = z[static_cast<size_t>(j)];
  }
  LinearFit fit = make_fit(p, coef);
  fit.rank = rank;
  return fit;
}

LinearFit weighted_lasso(const Tensor& x, const Tensor& y, const Tensor& weights, const LassoOptions& options) {
  LOUPE_CHECK(std::isfinite(options.alpha) && options.alpha >= 0.0, "weighted_lasso: alpha must be >= 0, got ",
              options.alpha);
  LOUPE_CHECK(options.tol >= 0.0 && options.max_iter >= 1, "weighted_lasso: need tol >= 0 and max_iter >= 1, got ",
              options.tol, " and ", options.max_iter);
  Problem p = load(x, y, weights, options.fit_intercept, true, "weighted_lasso");
  const int64_t n = p.n, m = p.m;
  const double alpha = options.alpha * static_cast<double>(n);  // penalty of 1/2 ||b - a beta||^2
  std::vector<double> col_norm2(static_cast<size_t>(m), 0.0);
  for (int64_t j = 0; j < m; ++j) {
    for (int64_t i = 0; i < n; ++i) col_norm2[static_cast<size_t>(j)] += p.a(i, j) * p.a(i, j);
  }
  std::vector<double> coef(static_cast<size_t>(p.t * m), 0.0);
  LinearFit result;
  result.converged = true;

  for (int64_t c = 0; c < p.t; ++c) {
    const double* y = p.b.col(c);
    std::vector<double> w(static_cast<size_t>(m), 0.0), r(y, y + n);  // r = y - a w
    double y_norm2 = 0.0;
    for (int64_t i = 0; i < n; ++i) y_norm2 += y[i] * y[i];
    const double gap_tol = options.tol * y_norm2;

    // Duality gap of the Lasso (scikit-learn's enet gap with no l2 term): with XtR = a^T r,
    // the dual point r * min(1, alpha / ||XtR||_inf) gives
    // gap = 1/2 (||r||^2 (1 + const^2)) + alpha ||w||_1 - const r.y   (const < 1), or
    // gap = ||r||^2 + alpha ||w||_1 - r.y                           (const = 1).
    auto gap = [&]() {
      double dual_norm = 0.0, r_norm2 = 0.0, r_dot_y = 0.0, l1 = 0.0;
      for (int64_t j = 0; j < m; ++j) {
        double s = 0.0;
        const double* aj = p.a.col(j);
        for (int64_t i = 0; i < n; ++i) s += aj[i] * r[static_cast<size_t>(i)];
        dual_norm = std::max(dual_norm, std::abs(s));
        l1 += std::abs(w[static_cast<size_t>(j)]);
      }
      for (int64_t i = 0; i < n; ++i) {
        r_norm2 += r[static_cast<size_t>(i)] * r[static_cast<size_t>(i)];
        r_dot_y += r[static_cast<size_t>(i)] * y[i];
      }
      double g = 0.0, k = 1.0;
      if (dual_norm > alpha) {
        k = alpha / dual_norm;
        g = 0.5 * (r_norm2 + r_norm2 * k * k);
      } else {
        g = r_norm2;
      }
      return g + alpha * l1 - k * r_dot_y;
    };

    int64_t sweeps = 0;
    bool done = gap() <= gap_tol;
    while (!done && sweeps < options.max_iter) {
      ++sweeps;
      double w_max = 0.0, d_w_max = 0.0;
      for (int64_t j = 0; j < m; ++j) {
        const double nj = col_norm2[static_cast<size_t>(j)];
        if (nj == 0.0) continue;
        const double* aj = p.a.col(j);
        const double w_old = w[static_cast<size_t>(j)];
        double tmp = w_old * nj;  // a_j . (r + w_old a_j)
        for (int64_t i = 0; i < n; ++i) tmp += aj[i] * r[static_cast<size_t>(i)];
        const double w_new = (tmp > 0 ? 1.0 : tmp < 0 ? -1.0 : 0.0) * std::max(std::abs(tmp) - alpha, 0.0) / nj;
        if (w_new != w_old) {
          for (int64_t i = 0; i < n; ++i) r[static_cast<size_t>(i)] += (w_old - w_new) * aj[i];
        }
        w[static_cast<size_t>(j)] = w_new;
        d_w_max = std::max(d_w_max, std::abs(w_new - w_old));
        w_max = std::max(w_max, std::abs(w_new));
      }
      // The gap costs a pass over a: check it only once the coefficients have settled.
      // With alpha = 0 (least squares) the gap bound is void (no dual point): the settled
      // coefficients are the criterion.
      const bool settled = w_max == 0.0 || d_w_max / w_max <= options.tol;
      if (settled && alpha == 0.0)
        done = true;
      else if (settled || sweeps == options.max_iter)
        done = gap() <= gap_tol;
    }
    result.converged = result.converged && done;
    result.iterations = std::max(result.iterations, sweeps);
    std::copy(w.begin(), w.end(), coef.begin() + c * m);
  }
  LinearFit fit = make_fit(p, coef);
  fit.iterations = result.iterations;
  fit.converged = result.converged;
  return fit;
}

}  // namespace loupe::explain
