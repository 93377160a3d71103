// The spanning tree of the pixel grid in one call (CPU): exp(-cos) edge weights, MST, BFS from
// the top-left pixel. Same results as grid_cosine_weights -> mst -> bfs (reference-grootvl.md
// 1.2-1.5; oracle: grootvl_core.ops.grid_spanning_tree_ref), without the per-op dispatch, the
// (B, E, 2) int64 edge list, the int32 -> int64 copy of the tree and the validity passes: a grid
// is connected and its edge list is made here, so every index is in range by construction.
#include "tree_scan.h"

#include <ATen/Parallel.h>

#include <cstdint>
#include <limits>
#include <vector>

#include "tree_build.h"

namespace grootvl {

std::tuple<Tensor, Tensor, Tensor, Tensor> grid_tree_cpu(const Tensor& feature) {
  const int64_t batch = feature.size(0), h = feature.size(2), w = feature.size(3);
  const int64_t n_vert = h * w, n_edges = (h - 1) * w + h * (w - 1);
  TORCH_CHECK(n_vert <= std::numeric_limits<int32_t>::max() && n_edges < (int64_t{1} << 32),
              "grid_tree: the grid is too large (", h, "x", w, "); at most 2^31 - 1 pixels");
  const Tensor weights = grid_cosine_weights_cpu(feature);  // (B, E), parallel over pixel rows
  // grid_edges' order: vertical edges [v, v + W] first, then horizontal [v, v + 1], row-major
  std::vector<int32_t> edges(2 * n_edges);
  int64_t e = 0;
  for (int64_t v = 0; v < (h - 1) * w; ++v, ++e) {
    edges[2 * e] = static_cast<int32_t>(v);
    edges[2 * e + 1] = static_cast<int32_t>(v + w);
  }
  for (int64_t r = 0; r < h; ++r)
    for (int64_t c = 0; c + 1 < w; ++c, ++e) {
      edges[2 * e] = static_cast<int32_t>(r * w + c);
      edges[2 * e + 1] = static_cast<int32_t>(r * w + c + 1);
    }
  const auto opts = feature.options();
  Tensor tree = at::empty({batch, n_vert - 1, 2}, opts.dtype(at::kInt));
  Tensor order = at::empty({batch, n_vert}, opts.dtype(at::kLong));
  Tensor parent = at::empty({batch, n_vert}, opts.dtype(at::kLong));
  Tensor depth = at::zeros({batch, n_vert}, opts.dtype(at::kLong));
  const float* w_all = weights.data_ptr<float>();
  int32_t* tree_all = tree.data_ptr<int32_t>();
  int64_t* order_all = order.data_ptr<int64_t>();
  int64_t* parent_all = parent.data_ptr<int64_t>();
  int64_t* depth_all = depth.data_ptr<int64_t>();
  at::parallel_for(0, batch, 1, [&](int64_t begin, int64_t end) {
    tree_build::Scratch scratch;
    for (int64_t b = begin; b < end; ++b) {
      int32_t* rows = tree_all + b * (n_vert - 1) * 2;
      const int64_t n_tree = tree_build::mst_one(edges.data(), w_all + b * n_edges, n_edges, n_vert, rows, scratch);
      const int64_t n_seen = tree_build::bfs_one(rows, n_vert, 0, order_all + b * n_vert, parent_all + b * n_vert,
                                                 depth_all + b * n_vert, scratch);
      TORCH_INTERNAL_ASSERT(n_tree == n_vert - 1 && n_seen == n_vert, "grid_tree: a grid graph is connected");
    }
  });
  return {tree, order, parent, depth};
}

}  // namespace grootvl
