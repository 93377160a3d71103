// Full tree scan on the CPU, forward and backward (reference-grootvl.md 1.6 and 1.7; oracle:
// reference.py `scan_full_fwd` / `scan_full_bwd`).
//
// y_i = sum_j S(i, j) x_j by two passes over BFS positions:
//   pass 1 (i = V-1 .. 1):  U[p(i)] += e_i U[i]                       (U starts as x)
//   pass 2 (i = 1 .. V-1):  Y[i] = (1 - e_i^2) U[i] + e_i Y[p(i)],   Y[0] = U[0]
// Backward: grad_x = M g (M is symmetric: the same two passes on g), and for a non-root position
//   grad_e_i = Ug_i (Yx_p - e_i Ux_i) + Ux_i (Yg_p - e_i Ug_i), formed during pass 2 of g.
// Tiles of (batch, 64-byte channel block) run in parallel (see scan_block.h).
#include "scan_block.h"

namespace grootvl {
namespace {

using cpu::Tile;

// u[k] = (1 - e[k]^2) u[k] + e[k] yp[k] over one line (a vertex and its parent: no aliasing).
template <typename scalar_t>
inline void prop_line(scalar_t* __restrict u, const scalar_t* __restrict e, const scalar_t* __restrict yp) {
  constexpr int64_t K = Tile<scalar_t>::kBlock;
  GROOTVL_SIMD
  for (int64_t k = 0; k < K; ++k) u[k] = (scalar_t(1) - e[k] * e[k]) * u[k] + e[k] * yp[k];
}

// One position of the backward pass 2: forms grad_e in place of e and Yg in place of Ug.
template <typename scalar_t>
inline void full_grad_line(scalar_t* __restrict g, scalar_t* __restrict e, const scalar_t* __restrict ux,
                           const scalar_t* __restrict yx_p, const scalar_t* __restrict yg_p) {
  constexpr int64_t K = Tile<scalar_t>::kBlock;
  GROOTVL_SIMD
  for (int64_t k = 0; k < K; ++k) {
    const scalar_t ek = e[k], ug = g[k], uk = ux[k];
    e[k] = ug * (yx_p[k] - ek * uk) + uk * (yg_p[k] - ek * ug);
    g[k] = (scalar_t(1) - ek * ek) * ug + ek * yg_p[k];
  }
}

// Pass 2 on vertex-major scratch, in place on the pass-1 result:
// Y[v(i)] = (1 - e^2) U[v(i)] + e Y[v(p(i))] with e = e[v(i)], positions 1 .. V-1.
template <typename scalar_t>
inline void root_to_leaf_full(const Tile<scalar_t>& t, const scalar_t* e, scalar_t* u) {
  constexpr int64_t K = Tile<scalar_t>::kBlock;
  for (int64_t i = 1; i < t.n; ++i) {
    const int64_t v = t.vertex(i);
    const scalar_t* yp = u + t.parent_vertex(i) * K;
    scalar_t* ui = u + v * K;
    const scalar_t* ei = e + v * K;
    prop_line<scalar_t>(ui, ei, yp);
  }
}

// Channels-last forward (x and a hold [b, d, v] at b * batch + v * D + d): the rows of D channels
// are already vertex-major, so the two passes run in place in y over whole rows, with no
// scratch and no transposes. One task per batch element; used when there are at least as many
// batch elements as threads (splitting a row between threads measured slower than the tiles).
template <typename scalar_t>
inline void axpy_row(scalar_t* __restrict up, const scalar_t* __restrict e, const scalar_t* __restrict u, int64_t w) {
  GROOTVL_SIMD
  for (int64_t k = 0; k < w; ++k) up[k] += e[k] * u[k];
}

template <typename scalar_t>
inline void prop_row(scalar_t* __restrict u, const scalar_t* __restrict e, const scalar_t* __restrict yp, int64_t w) {
  GROOTVL_SIMD
  for (int64_t k = 0; k < w; ++k) u[k] = (scalar_t(1) - e[k] * e[k]) * u[k] + e[k] * yp[k];
}

template <typename scalar_t>
void full_fwd_rows(const scalar_t* x, const scalar_t* a, scalar_t* y, scalar_t* u, int64_t batch, int64_t channels,
                   int64_t n, const cpu::Layout& lx, const cpu::Layout& la, const cpu::Layout& ly,
                   const cpu::Layout& lu, const std::vector<int64_t>& walk) {
  at::parallel_for(0, batch, 1, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      const int64_t w = channels;
      const scalar_t* xb = x + b * lx.batch;
      const scalar_t* ab = a + b * la.batch;
      scalar_t* yb = y + b * ly.batch;
      scalar_t* ub = u != nullptr ? u + b * lu.batch : nullptr;
      const int64_t* wk = walk.data() + 2 * b * n;
      const size_t bytes = static_cast<size_t>(w) * sizeof(scalar_t);
      for (int64_t v = 0; v < n; ++v) std::memcpy(yb + v * ly.vert, xb + v * lx.vert, bytes);
      for (int64_t i = n - 1; i >= 1; --i)  // pass 1: U[p] += e U
        axpy_row<scalar_t>(yb + wk[2 * i + 1] * ly.vert, ab + wk[2 * i] * la.vert, yb + wk[2 * i] * ly.vert, w);
      if (u != nullptr)
        for (int64_t i = 0; i < n; ++i) std::memcpy(ub + i * lu.vert, yb + wk[2 * i] * ly.vert, bytes);
      for (int64_t i = 1; i < n; ++i) {  // pass 2: Y = (1 - e^2) U + e Y[p]
        const int64_t v = wk[2 * i];
        prop_row<scalar_t>(yb + v * ly.vert, ab + v * la.vert, yb + wk[2 * i + 1] * ly.vert, w);
      }
    }
  });
}

inline bool rows_layout(const cpu::Layout& l, int64_t channels, int64_t n) {
  return l.chan == 1 && l.vert == channels && channels > 1 && n > 1;
}

// The forward; `with_u` false skips the pass-1 aggregate u (only the backward reads it) and
// returns it undefined.
Pair full_fwd(const char* op, const Tensor& x, const Tensor& a, const Tensor& order, const Tensor& parent,
              bool with_u) {
  const std::vector<int64_t> walk = cpu::tree_walk(op, order, parent);
  // x and a come contiguous or channels-last (see Layout); y and u get x's layout
  const Tensor &xc = x, &ac = a;
  const int64_t batch = x.size(0), channels = x.size(1), n = x.size(2);
  Tensor y = at::empty_like(xc);
  Tensor u = with_u ? at::empty_like(xc) : Tensor();
  const cpu::Layout lx = cpu::layout_of(xc), la = cpu::layout_of(ac), ly = cpu::layout_of(y);
  const cpu::Layout lu = with_u ? cpu::layout_of(u) : ly;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "scan_full_fwd_cpu", [&] {
    constexpr int64_t K = Tile<scalar_t>::kBlock;
    const scalar_t* xp = xc.data_ptr<scalar_t>();
    const scalar_t* ap = ac.data_ptr<scalar_t>();
    scalar_t* yp = y.data_ptr<scalar_t>();
    scalar_t* up = with_u ? u.data_ptr<scalar_t>() : nullptr;
    if (batch >= at::get_num_threads() && rows_layout(lx, channels, n) && rows_layout(la, channels, n) &&
        rows_layout(ly, channels, n) && rows_layout(lu, channels, n)) {
      full_fwd_rows<scalar_t>(xp, ap, yp, up, batch, channels, n, lx, la, ly, lu, walk);
      return;
    }
    cpu::for_each_tile<scalar_t>(batch, channels, n, walk, 2, [&](const Tile<scalar_t>& t, scalar_t* s) {
      scalar_t* buf_x = s;          // x -> U (pass 1) -> Y (pass 2), vertex-major
      scalar_t* buf_e = s + n * K;  // a, vertex-major
      cpu::load_tile(t, xp, lx, buf_x);
      cpu::load_tile(t, ap, la, buf_e);
      cpu::leaf_to_root(t, buf_e, buf_x);
      if (up != nullptr) cpu::store_tile_sorted(t, buf_x, lu, up);
      root_to_leaf_full(t, buf_e, buf_x);
      cpu::store_tile(t, buf_x, ly, yp);
    });
  });
  return {y, u};
}

}  // namespace

Pair scan_full_fwd_cpu(const Tensor& x, const Tensor& a, const Tensor& order, const Tensor& parent,
                       const Tensor& depth) {
  (void)depth;  // the CPU walks positions sequentially; depth levels are not needed
  return full_fwd("scan_full_fwd", x, a, order, parent, true);
}

Tensor scan_full_infer_cpu(const Tensor& x, const Tensor& a, const Tensor& order, const Tensor& parent) {
  return std::get<0>(full_fwd("scan_full_infer", x, a, order, parent, false));
}

Pair scan_full_bwd_cpu(const Tensor& g, const Tensor& a, const Tensor& order, const Tensor& parent,
                       const Tensor& depth, const Tensor& y, const Tensor& u) {
  (void)depth;
  const std::vector<int64_t> walk = cpu::tree_walk("scan_full_bwd", order, parent);
  const Tensor &gc = g, &ac = a, &yc = y, &uc = u;  // each contiguous or channels-last
  const int64_t batch = g.size(0), channels = g.size(1), n = g.size(2);
  Tensor grad_x = at::empty_like(gc);
  Tensor grad_a = at::empty_like(gc);
  const cpu::Layout lg = cpu::layout_of(gc), la = cpu::layout_of(ac), ly = cpu::layout_of(yc),
                    lu = cpu::layout_of(uc), lgx = cpu::layout_of(grad_x), lga = cpu::layout_of(grad_a);
  AT_DISPATCH_FLOATING_TYPES(g.scalar_type(), "scan_full_bwd_cpu", [&] {
    constexpr int64_t K = Tile<scalar_t>::kBlock;
    const scalar_t* gp = gc.data_ptr<scalar_t>();
    const scalar_t* ap = ac.data_ptr<scalar_t>();
    const scalar_t* yxp = yc.data_ptr<scalar_t>();
    const scalar_t* uxp = uc.data_ptr<scalar_t>();
    scalar_t* gxp = grad_x.data_ptr<scalar_t>();
    scalar_t* gap = grad_a.data_ptr<scalar_t>();
    cpu::for_each_tile<scalar_t>(batch, channels, n, walk, 4, [&](const Tile<scalar_t>& t, scalar_t* s) {
      scalar_t* buf_g = s;               // g -> Ug (pass 1) -> Yg (pass 2, in place), vertex-major
      scalar_t* buf_e = s + n * K;       // a -> grad_a (in place, vertex by vertex), vertex-major
      scalar_t* buf_yx = s + 2 * n * K;  // forward y, vertex-major
      scalar_t* buf_ux = s + 3 * n * K;  // forward U, position-major
      cpu::load_tile(t, gp, lg, buf_g);
      cpu::load_tile(t, ap, la, buf_e);
      cpu::load_tile(t, yxp, ly, buf_yx);
      cpu::load_tile(t, uxp, lu, buf_ux);
      cpu::leaf_to_root(t, buf_e, buf_g);
      for (int64_t i = 1; i < n; ++i) {
        const int64_t v = t.vertex(i), pv = t.parent_vertex(i);
        full_grad_line<scalar_t>(buf_g + v * K, buf_e + v * K, buf_ux + i * K, buf_yx + pv * K, buf_g + pv * K);
      }
      scalar_t* e_root = buf_e + t.vertex(0) * K;
      for (int64_t k = 0; k < K; ++k) e_root[k] = scalar_t(0);  // the root has no edge
      cpu::store_tile(t, buf_g, lgx, gxp);
      cpu::store_tile(t, buf_e, lga, gap);
    });
  });
  return {grad_x, grad_a};
}

}  // namespace grootvl
