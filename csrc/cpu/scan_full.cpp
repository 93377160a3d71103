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

// Pass 2, in place on the pass-1 buffer: Y[i] = (1 - e_i^2) U[i] + e_i Y[p(i)].
template <typename scalar_t>
inline void root_to_leaf_full(const Tile<scalar_t>& t, const scalar_t* e, scalar_t* u) {
  constexpr int64_t K = Tile<scalar_t>::kBlock;
  for (int64_t i = 1; i < t.n; ++i) {
    const scalar_t* yp = u + t.parent[i] * K;
    scalar_t* ui = u + i * K;
    const scalar_t* ei = e + i * K;
    for (int64_t k = 0; k < K; ++k) ui[k] = (scalar_t(1) - ei[k] * ei[k]) * ui[k] + ei[k] * yp[k];
  }
}

}  // namespace

Pair scan_full_fwd_cpu(const Tensor& x, const Tensor& a, const Tensor& order, const Tensor& parent,
                       const Tensor& depth) {
  (void)depth;  // the CPU walks positions sequentially; depth levels are not needed
  cpu::check_tree("scan_full_fwd", order, parent);
  const Tensor xc = x.contiguous(), ac = a.contiguous();
  const int64_t batch = x.size(0), channels = x.size(1), n = x.size(2);
  Tensor y = at::empty_like(xc);
  Tensor u = at::empty_like(xc);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "scan_full_fwd_cpu", [&] {
    constexpr int64_t K = Tile<scalar_t>::kBlock;
    const scalar_t* xp = xc.data_ptr<scalar_t>();
    const scalar_t* ap = ac.data_ptr<scalar_t>();
    scalar_t* yp = y.data_ptr<scalar_t>();
    scalar_t* up = u.data_ptr<scalar_t>();
    cpu::for_each_tile<scalar_t>(batch, channels, n, order, parent, 2, [&](const Tile<scalar_t>& t, scalar_t* s) {
      scalar_t* buf_u = s;
      scalar_t* buf_e = s + n * K;
      cpu::gather_sorted(t, xp, buf_u);
      cpu::gather_sorted(t, ap, buf_e);
      cpu::leaf_to_root(t, buf_e, buf_u);
      cpu::store_sorted(t, buf_u, up);
      root_to_leaf_full(t, buf_e, buf_u);
      cpu::scatter_vertex(t, buf_u, yp);
    });
  });
  return {y, u};
}

Pair scan_full_bwd_cpu(const Tensor& g, const Tensor& a, const Tensor& order, const Tensor& parent,
                       const Tensor& depth, const Tensor& y, const Tensor& u) {
  (void)depth;
  cpu::check_tree("scan_full_bwd", order, parent);
  const Tensor gc = g.contiguous(), ac = a.contiguous(), yc = y.contiguous(), uc = u.contiguous();
  const int64_t batch = g.size(0), channels = g.size(1), n = g.size(2);
  Tensor grad_x = at::empty_like(gc);
  Tensor grad_a = at::empty_like(gc);
  AT_DISPATCH_FLOATING_TYPES(g.scalar_type(), "scan_full_bwd_cpu", [&] {
    constexpr int64_t K = Tile<scalar_t>::kBlock;
    const scalar_t* gp = gc.data_ptr<scalar_t>();
    const scalar_t* ap = ac.data_ptr<scalar_t>();
    const scalar_t* yxp = yc.data_ptr<scalar_t>();
    const scalar_t* uxp = uc.data_ptr<scalar_t>();
    scalar_t* gxp = grad_x.data_ptr<scalar_t>();
    scalar_t* gap = grad_a.data_ptr<scalar_t>();
    cpu::for_each_tile<scalar_t>(batch, channels, n, order, parent, 4, [&](const Tile<scalar_t>& t, scalar_t* s) {
      scalar_t* buf_g = s;          // g -> Ug (pass 1) -> Yg (pass 2, in place)
      scalar_t* buf_e = s + n * K;  // e -> grad_e (in place, position by position)
      scalar_t* buf_yx = s + 2 * n * K;
      scalar_t* buf_ux = s + 3 * n * K;
      cpu::gather_sorted(t, gp, buf_g);
      cpu::gather_sorted(t, ap, buf_e);
      cpu::gather_sorted(t, yxp, buf_yx);
      cpu::load_sorted(t, uxp, buf_ux);
      cpu::leaf_to_root(t, buf_e, buf_g);
      for (int64_t i = 1; i < n; ++i) {
        const int64_t p = t.parent[i];
        const scalar_t* yg_p = buf_g + p * K;
        const scalar_t* yx_p = buf_yx + p * K;
        const scalar_t* ux_i = buf_ux + i * K;
        scalar_t* g_i = buf_g + i * K;
        scalar_t* e_i = buf_e + i * K;
        for (int64_t k = 0; k < K; ++k) {
          const scalar_t e = e_i[k], ug = g_i[k], ux = ux_i[k];
          e_i[k] = ug * (yx_p[k] - e * ux) + ux * (yg_p[k] - e * ug);
          g_i[k] = (scalar_t(1) - e * e) * ug + e * yg_p[k];
        }
      }
      for (int64_t k = 0; k < K; ++k) buf_e[k] = scalar_t(0);  // the root has no edge
      cpu::scatter_vertex(t, buf_g, gxp);
      cpu::scatter_vertex(t, buf_e, gap);
    });
  });
  return {grad_x, grad_a};
}

}  // namespace grootvl
