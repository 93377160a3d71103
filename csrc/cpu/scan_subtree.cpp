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

namespace {

// One position of the subtree backward: grad_e in place of e, G in place of g (G_p is final).
template <typename scalar_t>
inline void subtree_grad_line(scalar_t* __restrict g, scalar_t* __restrict e, const scalar_t* __restrict y,
                              const scalar_t* __restrict g_p) {
  constexpr int64_t K = Tile<scalar_t>::kBlock;
  GROOTVL_SIMD
  for (int64_t k = 0; k < K; ++k) {
    const scalar_t ek = e[k];
    e[k] = g_p[k] * y[k];
    g[k] += ek * g_p[k];
  }
}

}  // namespace

Tensor scan_subtree_fwd_cpu(const Tensor& x, const Tensor& a, const Tensor& order, const Tensor& parent,
                            const Tensor& depth) {
  (void)depth;  // the CPU walks positions sequentially; depth levels are not needed
  const std::vector<int64_t> walk = cpu::tree_walk("scan_subtree_fwd", order, parent);
  const Tensor &xc = x, &ac = a;  // contiguous or channels-last (see Layout); y gets x's layout
  const int64_t batch = x.size(0), channels = x.size(1), n = x.size(2);
  Tensor y = at::empty_like(xc);
  const cpu::Layout lx = cpu::layout_of(xc), la = cpu::layout_of(ac), ly = cpu::layout_of(y);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "scan_subtree_fwd_cpu", [&] {
    constexpr int64_t K = Tile<scalar_t>::kBlock;
    const scalar_t* xp = xc.data_ptr<scalar_t>();
    const scalar_t* ap = ac.data_ptr<scalar_t>();
    scalar_t* yp = y.data_ptr<scalar_t>();
    cpu::for_each_tile<scalar_t>(batch, channels, n, walk, 2, [&](const Tile<scalar_t>& t, scalar_t* s) {
      scalar_t* buf_x = s;          // x -> U (pass 1), vertex-major
      scalar_t* buf_e = s + n * K;  // a, vertex-major
      cpu::load_tile(t, xp, lx, buf_x);
      cpu::load_tile(t, ap, la, buf_e);
      cpu::leaf_to_root(t, buf_e, buf_x);
      cpu::store_tile(t, buf_x, ly, yp);
    });
  });
  return y;
}

Pair scan_subtree_bwd_cpu(const Tensor& g, const Tensor& a, const Tensor& order, const Tensor& parent,
                          const Tensor& depth, const Tensor& y) {
  (void)depth;
  const std::vector<int64_t> walk = cpu::tree_walk("scan_subtree_bwd", order, parent);
  const Tensor &gc = g, &ac = a, &yc = y;  // each contiguous or channels-last
  const int64_t batch = g.size(0), channels = g.size(1), n = g.size(2);
  Tensor grad_x = at::empty_like(gc);
  Tensor grad_a = at::empty_like(gc);
  const cpu::Layout lg = cpu::layout_of(gc), la = cpu::layout_of(ac), ly = cpu::layout_of(yc),
                    lgx = cpu::layout_of(grad_x), lga = cpu::layout_of(grad_a);
  AT_DISPATCH_FLOATING_TYPES(g.scalar_type(), "scan_subtree_bwd_cpu", [&] {
    constexpr int64_t K = Tile<scalar_t>::kBlock;
    const scalar_t* gp = gc.data_ptr<scalar_t>();
    const scalar_t* ap = ac.data_ptr<scalar_t>();
    const scalar_t* yp = yc.data_ptr<scalar_t>();
    scalar_t* gxp = grad_x.data_ptr<scalar_t>();
    scalar_t* gap = grad_a.data_ptr<scalar_t>();
    cpu::for_each_tile<scalar_t>(batch, channels, n, walk, 3, [&](const Tile<scalar_t>& t, scalar_t* s) {
      scalar_t* buf_g = s;              // g -> G (prefix over ancestors, in place), vertex-major
      scalar_t* buf_e = s + n * K;      // a -> grad_a (in place, vertex by vertex), vertex-major
      scalar_t* buf_y = s + 2 * n * K;  // forward y, vertex-major
      cpu::load_tile(t, gp, lg, buf_g);
      cpu::load_tile(t, ap, la, buf_e);
      cpu::load_tile(t, yp, ly, buf_y);
      for (int64_t i = 1; i < n; ++i) {
        const int64_t v = t.vertex(i);
        subtree_grad_line<scalar_t>(buf_g + v * K, buf_e + v * K, buf_y + v * K, buf_g + t.parent_vertex(i) * K);
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
