// Declarations of the native tree-scan backends (CPU in csrc/cpu, CUDA in csrc/cuda).
//
// Semantics: grootvl_core/ops/reference.py (the oracle) and reference-grootvl.md 1.2-1.9.
// All index tensors are int64. Scan tensors are (B, D, V), float32 or float64 (on CUDA also
// float16 / bfloat16, read and written as such and computed in float32), contiguous, in VERTEX
// order except `u`, the pass-1 aggregate of the full scan, which is (B, D, V) in SORTED (BFS
// position) order and in the compute dtype (float32 for float16 / bfloat16 scans). `order`, `parent` (position of the parent), `depth` are (B, V).
// The root's `a` is ignored and its gradient is 0. Inputs are never mutated.
#pragma once

#include <torch/extension.h>

#include <tuple>

namespace grootvl {

using Tensor = at::Tensor;
using Pair = std::tuple<Tensor, Tensor>;

// edges (B, E, 2) int64, weights (B, E) float32 -> (tree (B, V-1, 2) int32, ok (B,) bool).
// The unique MST under the total order (weight, edge index); NaN sorts last. ok[b] is false when
// batch b is not connected (its unused rows are then -1). Never hangs.
#define GROOTVL_DECLARE_BACKEND(SUFFIX)                                                         \
  Pair mst_##SUFFIX(const Tensor& edges, const Tensor& weights, int64_t num_vertices);          \
  /* tree (B, V-1, 2) int64 -> (order, parent, depth (B, V) int64, ok (B,) bool) */              \
  std::tuple<Tensor, Tensor, Tensor, Tensor> bfs_##SUFFIX(const Tensor& tree, int64_t root);    \
  /* full: y_i = sum_j S(i,j) x_j -> (y vertex order, u sorted order) */                         \
  Pair scan_full_fwd_##SUFFIX(const Tensor& x, const Tensor& a, const Tensor& order,            \
                              const Tensor& parent, const Tensor& depth);                       \
  Pair scan_full_bwd_##SUFFIX(const Tensor& g, const Tensor& a, const Tensor& order,            \
                              const Tensor& parent, const Tensor& depth, const Tensor& y,       \
                              const Tensor& u);                                                 \
  /* subtree: y_i = sum_{j in subtree(i)} S(i,j) x_j (vertex order) */                          \
  Tensor scan_subtree_fwd_##SUFFIX(const Tensor& x, const Tensor& a, const Tensor& order,       \
                                   const Tensor& parent, const Tensor& depth);                  \
  Pair scan_subtree_bwd_##SUFFIX(const Tensor& g, const Tensor& a, const Tensor& order,         \
                                 const Tensor& parent, const Tensor& depth, const Tensor& y);

GROOTVL_DECLARE_BACKEND(cpu)
// feature (B, D, H, W) float32 -> (B, E) float32 exp(-cos) of the grid edges in grid_edges order
// (vertical edges first, then horizontal, each row-major). CPU only: other devices use the
// PyTorch formula (reference.py grid_cosine_weights).
Tensor grid_cosine_weights_cpu(const Tensor& feature);
// feature (B, D, H, W) float32 -> the grid's spanning tree in one pass: (tree (B, V-1, 2) int32 as
// mst gives it for grid_edges and grid_cosine_weights, then order, parent, depth (B, V) int64 as bfs
// gives them from vertex 0). CPU only.
std::tuple<Tensor, Tensor, Tensor, Tensor> grid_tree_cpu(const Tensor& feature);
// The full scan's forward for inference: y only (scan_full_fwd's u, which only the backward reads,
// is neither computed into memory nor allocated). CPU only.
Tensor scan_full_infer_cpu(const Tensor& x, const Tensor& a, const Tensor& order, const Tensor& parent);
// silu(depthwise conv k x k (stride 1, zero padding k/2) + bias) for inference: input and output
// (B, H, W, C) contiguous float32, weight (C, 1, k, k) contiguous, bias (C,) or none. CPU only.
Tensor depthwise_conv_silu_cpu(const Tensor& input, const Tensor& weight, const c10::optional<Tensor>& bias);
// TreeSSM output for inference: out_norm(h_norm(h) * c + u * ds) * g over (B, L, D) float32 rows,
// g = silu(z) if silu_gate else z (h, u contiguous; z with contiguous rows (stride(2) == 1); c
// (B, L, 1) any strides; h_norm optional).
// CPU only.
Tensor ssm_output_cpu(const Tensor& h, const Tensor& u, const Tensor& c, const Tensor& ds,
                      const c10::optional<Tensor>& h_weight, const c10::optional<Tensor>& h_bias, double h_eps,
                      const Tensor& o_weight, const Tensor& o_bias, double o_eps, const Tensor& z, bool silu_gate);
// TreeSSM discretisation for inference: delta = softplus(dt + bias) (PyTorch's, threshold 20),
// returns (abar = exp(delta * a), xin = delta * b * u), each (B, L, D) float32 (dt, u contiguous
// (B, L, D); bias, a (D,); b (B, L, 1) any strides). CPU only.
Pair ssm_discretize_cpu(const Tensor& dt, const Tensor& bias, const Tensor& a, const Tensor& b, const Tensor& u);
#ifdef GROOTVL_WITH_CUDA
GROOTVL_DECLARE_BACKEND(cuda)
#endif

#undef GROOTVL_DECLARE_BACKEND

}  // namespace grootvl
