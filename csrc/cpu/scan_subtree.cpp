// Subtree tree scan on the CPU, forward and backward (reference-grootvl.md 1.9; oracle:
// reference.py `scan_subtree_fwd` / `scan_subtree_bwd`).
//
// Forward (pass 1 only):  y_i = x_i + sum_{c in ch(i)} e_c y_c, i.e. y_i = sum_{j in subtree(i)} S(i, j) x_j.
// Backward (root to leaf): G_i = g_i + e_i G_{p(i)}, G_root = g_root, grad_x = G; for a non-root
//   position grad_e_i = G_{p(i)} y_i (y is the forward output); the root's is 0.
// Tiles of (batch, 64-byte channel block) run in parallel (see scan_block.h).
#include "scan_block.h"

namespace grootvl {

using cpu::Tile;

Tensor scan_subtree_fwd_cpu(const Tensor& x, const Tensor& a, const Tensor& order, const Tensor& parent,
                            const Tensor& depth) {
  (void)depth;  // the CPU walks positions sequentially; depth levels are not needed
  cpu::check_tree("scan_subtree_fwd", order, parent);
  const Tensor xc = x.contiguous(), ac = a.contiguous();
  const int64_t batch = x.size(0), channels = x.size(1), n = x.size(2);
  Tensor y = at::empty_like(xc);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "scan_subtree_fwd_cpu", [&] {
    constexpr int64_t K = Tile<scalar_t>::kBlock;
    const scalar_t* xp = xc.data_ptr<scalar_t>();
    const scalar_t* ap = ac.data_ptr<scalar_t>();
    scalar_t* yp = y.data_ptr<scalar_t>();
    cpu::for_each_tile<scalar_t>(batch, channels, n, order, parent, 2, [&](const Tile<scalar_t>& t, scalar_t* s) {
      scalar_t* buf_u = s;
      scalar_t* buf_e = s + n * K;
      cpu::gather_sorted(t, xp, buf_u);
      cpu::gather_sorted(t, ap, buf_e);
      cpu::leaf_to_root(t, buf_e, buf_u);
      cpu::scatter_vertex(t, buf_u, yp);
    });
  });
  return y;
}

Pair scan_subtree_bwd_cpu(const Tensor& g, const Tensor& a, const Tensor& order, const Tensor& parent,
                          const Tensor& depth, const Tensor& y) {
  (void)depth;
  cpu::check_tree("scan_subtree_bwd", order, parent);
  const Tensor gc = g.contiguous(), ac = a.contiguous(), yc = y.contiguous();
  const int64_t batch = g.size(0), channels = g.size(1), n = g.size(2);
  Tensor grad_x = at::empty_like(gc);
  Tensor grad_a = at::empty_like(gc);
  AT_DISPATCH_FLOATING_TYPES(g.scalar_type(), "scan_subtree_bwd_cpu", [&] {
    constexpr int64_t K = Tile<scalar_t>::kBlock;
    const scalar_t* gp = gc.data_ptr<scalar_t>();
    const scalar_t* ap = ac.data_ptr<scalar_t>();
    const scalar_t* yp = yc.data_ptr<scalar_t>();
    scalar_t* gxp = grad_x.data_ptr<scalar_t>();
    scalar_t* gap = grad_a.data_ptr<scalar_t>();
    cpu::for_each_tile<scalar_t>(batch, channels, n, order, parent, 3, [&](const Tile<scalar_t>& t, scalar_t* s) {
      scalar_t* buf_g = s;          // g -> G (prefix over ancestors, in place)
      scalar_t* buf_e = s + n * K;  // e -> grad_e (in place, position by position)
      scalar_t* buf_y = s + 2 * n * K;
      cpu::gather_sorted(t, gp, buf_g);
      cpu::gather_sorted(t, ap, buf_e);
      cpu::gather_sorted(t, yp, buf_y);
      for (int64_t i = 1; i < n; ++i) {
        const scalar_t* g_p = buf_g + t.parent[i] * K;
        const scalar_t* y_i = buf_y + i * K;
        scalar_t* g_i = buf_g + i * K;
        scalar_t* e_i = buf_e + i * K;
        for (int64_t k = 0; k < K; ++k) {
          const scalar_t e = e_i[k];
          e_i[k] = g_p[k] * y_i[k];
          g_i[k] += e * g_p[k];
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
