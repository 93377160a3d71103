// Data layout of the CUDA scans (reference-grootvl.md 1.6: x, a and y are in vertex order,
// the passes walk BFS positions).
//
// The scan kernels keep one thread per channel and walk positions, so they want position-major
// data: (B, V, D) in SORTED order, where the D channels of one position are contiguous and a warp
// reads 32 of them in one transaction. These tiled transposes convert (B, D, V) vertex order to
// that layout and back through the inverse permutation `inv[b, order[b, i]] = i`: both the read
// (along V) and the write (along D) are coalesced. With `inv == nullptr` they are plain
// transposes, used for `u`, which is (B, D, V) in sorted order.
//
// `order` must be a permutation of [0, V) (what bfs returns). Out-of-range ids are skipped, so
// a malformed order can give wrong values but never touches memory outside the tensors.
//
// float16 / bfloat16 scans: the sorted-order copies are float32 (converted inside these
// transposes, no extra pass), the scans run on them, and the way back converts to the caller's
// dtype; the saved pass-1 aggregate `u` stays float32.
#pragma once

#include "tree_scan.h"

namespace grootvl {
namespace cuda_detail {

// The tree of one scan call in the form the kernels use.
struct ScanTree {
  Tensor inv;  // (B, V) int32, position of each vertex (-1 if `order` misses it)
  Tensor par;  // (B, V) int32, parent position of each position (0 for the root), within [0, V)
};

ScanTree make_scan_tree(const Tensor& order, const Tensor& parent);

// (B, D, V) vertex order -> (B, V, D) sorted order; with `inv` undefined a plain transpose.
// `out_type`: in's dtype, or its compute dtype (float16/bfloat16 -> float32, converted on the way).
Tensor to_sorted(const Tensor& in, const Tensor& inv, at::ScalarType out_type);

// (B, V, D) sorted order -> (B, D, V) vertex order; with `inv` undefined a plain transpose.
// `out_type`: in's dtype, or a dtype whose compute dtype is in's (float32 -> float16/bfloat16).
Tensor to_vertex(const Tensor& in, const Tensor& inv, at::ScalarType out_type);

}  // namespace cuda_detail
}  // namespace grootvl
