// Breadth-first order of a spanning tree on the CPU (reference-grootvl.md 1.5, made exact and
// deterministic; oracle: reference.py `bfs`).
//
// The adjacency is a CSR built in the order of the tree's edge rows (row (s, t) appends t to s's
// list, then s to t's), so neighbours are visited exactly as the reference visits them and the
// outputs (order, parent positions, depth) are identical. The BFS queue is the `order` row itself.
// ok[b] is false when an id lies outside [0, V) or some vertex is not reachable from the root.
#include "tree_scan.h"

#include <ATen/Parallel.h>

#include <cstdint>
#include <vector>

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
    std::vector<int64_t> start(n_vert + 1), cursor(n_vert), adj(2 * n_rows), pos(n_vert);
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
      // CSR adjacency, each vertex's neighbours in edge-row order
      std::fill(start.begin(), start.end(), 0);
      for (int64_t k = 0; k < 2 * n_rows; ++k) ++start[rows[k] + 1];
      for (int64_t v = 0; v < n_vert; ++v) start[v + 1] += start[v];
      for (int64_t v = 0; v < n_vert; ++v) cursor[v] = start[v];
      for (int64_t k = 0; k < n_rows; ++k) {
        const int64_t s = rows[2 * k], t = rows[2 * k + 1];
        adj[cursor[s]++] = t;
        adj[cursor[t]++] = s;
      }
      std::fill(pos.begin(), pos.end(), -1);
      pos[root] = 0;
      ord[0] = root;
      int64_t n = 1;
      for (int64_t head = 0; head < n; ++head) {
        const int64_t cur = ord[head];
        for (int64_t k = start[cur]; k < start[cur + 1]; ++k) {
          const int64_t nb = adj[k];
          if (pos[nb] >= 0) continue;
          pos[nb] = n;
          ord[n] = nb;
          par[n] = head;
          dep[n] = dep[head] + 1;
          ++n;
        }
      }
      ok_all[b] = n == n_vert;
    }
  });
  return {order, parent, depth, ok};
}

}  // namespace grootvl
