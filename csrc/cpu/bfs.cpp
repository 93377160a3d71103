// Breadth-first order of a spanning tree on the CPU (reference-grootvl.md 1.5, made exact and
// deterministic; oracle: reference.py `bfs`).
//
// Per image: csrc/cpu/tree_build.h (neighbours visited exactly as the reference visits them, so
// order, parent positions and depths are identical); images in parallel.
// ok[b] is false when an id lies outside [0, V) or some vertex is not reachable from the root.
#include "tree_scan.h"

#include <ATen/Parallel.h>

#include <cstdint>
#include <vector>

#include "tree_build.h"

namespace grootvl {

std::tuple<Tensor, Tensor, Tensor, Tensor> bfs_cpu(const Tensor& tree_in, int64_t root) {
  const Tensor tree = tree_in.contiguous();
  const int64_t batch = tree.size(0);
  const int64_t n_rows = tree.size(1);
  const int64_t n_vert = n_rows + 1;
  TORCH_CHECK(root >= 0 && root < n_vert, "bfs: root must lie in [0, ", n_vert, "), got ", root);
  const auto opts = tree.options().dtype(at::kLong);
  Tensor order = at::zeros({batch, n_vert}, opts);
  Tensor parent = at::zeros({batch, n_vert}, opts);
  Tensor depth = at::zeros({batch, n_vert}, opts);
  Tensor ok = at::zeros({batch}, opts.dtype(at::kBool));
  const int64_t* rows_all = tree.data_ptr<int64_t>();
  int64_t* order_all = order.data_ptr<int64_t>();
  int64_t* parent_all = parent.data_ptr<int64_t>();
  int64_t* depth_all = depth.data_ptr<int64_t>();
  bool* ok_all = ok.data_ptr<bool>();

  at::parallel_for(0, batch, 1, [&](int64_t begin, int64_t end) {
    tree_build::Scratch scratch;
    for (int64_t b = begin; b < end; ++b) {
      const int64_t* rows = rows_all + b * n_rows * 2;
      int64_t* ord = order_all + b * n_vert;
      int64_t* par = parent_all + b * n_vert;
      int64_t* dep = depth_all + b * n_vert;
      bool valid = true;
      for (int64_t k = 0; k < 2 * n_rows; ++k) valid &= (rows[k] >= 0) & (rows[k] < n_vert);
      if (!valid) {
        ok_all[b] = false;
        continue;
      }
      ok_all[b] = tree_build::bfs_one(rows, n_vert, root, ord, par, dep, scratch) == n_vert;
    }
  });
  return {order, parent, depth, ok};
}

}  // namespace grootvl
