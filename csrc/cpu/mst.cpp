// Minimum spanning tree on the CPU (reference-grootvl.md 1.3; oracle: reference.py `mst`).
//
// Kruskal per image (csrc/cpu/tree_build.h), images in parallel. A graph that is not connected
// (or has an endpoint outside [0, V)) gives ok[b] = false; never hangs.
#include "tree_scan.h"

#include <ATen/Parallel.h>

#include <cstdint>
#include <limits>

#include "tree_build.h"

namespace grootvl {

Pair mst_cpu(const Tensor& edges_in, const Tensor& weights_in, int64_t num_vertices) {
  const Tensor edges = edges_in.contiguous();
  const Tensor weights = weights_in.contiguous();
  const int64_t batch = edges.size(0);
  const int64_t n_edges = edges.size(1);
  TORCH_CHECK(n_edges < (int64_t{1} << 32), "mst: at most 2^32 - 1 edges are supported, got ", n_edges);
  TORCH_CHECK(num_vertices <= std::numeric_limits<int32_t>::max(), "mst: num_vertices must fit in int32, got ",
              num_vertices);
  const int64_t n_tree = num_vertices - 1;
  Tensor tree = at::full({batch, n_tree, 2}, -1, edges.options().dtype(at::kInt));
  Tensor ok = at::zeros({batch}, edges.options().dtype(at::kBool));
  const int64_t* ed_all = edges.data_ptr<int64_t>();
  const float* w_all = weights.data_ptr<float>();
  int32_t* tree_all = tree.data_ptr<int32_t>();
  bool* ok_all = ok.data_ptr<bool>();

  at::parallel_for(0, batch, 1, [&](int64_t begin, int64_t end) {
    tree_build::Scratch scratch;
    for (int64_t b = begin; b < end; ++b) {
      const int64_t* ed = ed_all + b * n_edges * 2;
      const float* w = w_all + b * n_edges;
      int32_t* out = tree_all + b * n_tree * 2;
      bool valid = true;
      for (int64_t e = 0; e < 2 * n_edges; ++e) valid &= (ed[e] >= 0) & (ed[e] < num_vertices);
      if (!valid) {
        ok_all[b] = false;
        continue;
      }
      ok_all[b] = tree_build::mst_one(ed, w, n_edges, num_vertices, out, scratch) == n_tree;
    }
  });
  return {tree, ok};
}

}  // namespace grootvl
