// Minimum spanning tree on the CPU (reference-grootvl.md 1.3; oracle: reference.py `mst`).
//
// Kruskal: the (float32 weight, edge index) pairs are packed into uint64 keys, the weight's bits
// mapped to an order-preserving uint32 (NaN last, -0 == +0), sorted with a stable LSD radix sort
// on the weight half (so equal weights keep ascending edge index), then scanned with a
// union-find (path halving, union by size). The result is the unique MST under that total order,
// i.e. the same edge set as the published Boruvka. A graph that is not connected (or has an
// endpoint outside [0, V)) gives ok[b] = false; the loop is bounded by E, so it never hangs.
#include "tree_scan.h"

#include <ATen/Parallel.h>

#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

namespace grootvl {
namespace {

// Order-preserving map float32 -> uint32: negative floats reversed, positives above them;
// -0 and +0 compare equal (as torch.sort does); every NaN maps to the maximum (sorted last).
inline uint32_t sortable_bits(float w) {
  if (w != w) return 0xFFFFFFFFu;
  if (w == 0.0f) w = 0.0f;  // -0 -> +0
  uint32_t bits;
  std::memcpy(&bits, &w, sizeof(bits));
  return (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
}

// Stable LSD radix sort of `keys` by their upper 32 bits (8-bit digits, trivial digits skipped).
void radix_sort_upper32(std::vector<uint64_t>& keys, std::vector<uint64_t>& tmp) {
  const size_t n = keys.size();
  uint32_t hist[4][256];
  std::memset(hist, 0, sizeof(hist));
  for (size_t i = 0; i < n; ++i) {
    const uint32_t k = static_cast<uint32_t>(keys[i] >> 32);
    ++hist[0][k & 0xFF];
    ++hist[1][(k >> 8) & 0xFF];
    ++hist[2][(k >> 16) & 0xFF];
    ++hist[3][k >> 24];
  }
  uint64_t* src = keys.data();
  uint64_t* dst = tmp.data();
  for (int pass = 0; pass < 4; ++pass) {
    const int shift = 32 + 8 * pass;
    uint32_t* h = hist[pass];
    // a digit that is the same for every key does not change the order: skip the pass
    if (h[(src[0] >> shift) & 0xFF] == n) continue;
    uint32_t offset[256];
    uint32_t sum = 0;
    for (int d = 0; d < 256; ++d) {
      offset[d] = sum;
      sum += h[d];
    }
    for (size_t i = 0; i < n; ++i) dst[offset[(src[i] >> shift) & 0xFF]++] = src[i];
    std::swap(src, dst);
  }
  if (src != keys.data()) std::memcpy(keys.data(), src, n * sizeof(uint64_t));
}

inline int32_t find_root(std::vector<int32_t>& up, int32_t v) {
  while (up[v] != v) {
    up[v] = up[up[v]];  // path halving
    v = up[v];
  }
  return v;
}

}  // namespace

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
    std::vector<uint64_t> keys(n_edges), tmp(n_edges);
    std::vector<int32_t> up(num_vertices), size(num_vertices);
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
      for (int64_t e = 0; e < n_edges; ++e) keys[e] = (uint64_t(sortable_bits(w[e])) << 32) | uint64_t(e);
      if (n_edges > 0) radix_sort_upper32(keys, tmp);
      for (int32_t v = 0; v < num_vertices; ++v) {
        up[v] = v;
        size[v] = 1;
      }
      int64_t count = 0;
      for (int64_t k = 0; k < n_edges && count < n_tree; ++k) {
        const int64_t e = static_cast<int64_t>(keys[k] & 0xFFFFFFFFu);
        const int32_t s = static_cast<int32_t>(ed[2 * e]), t = static_cast<int32_t>(ed[2 * e + 1]);
        int32_t rs = find_root(up, s), rt = find_root(up, t);
        if (rs == rt) continue;
        if (size[rs] < size[rt]) std::swap(rs, rt);
        up[rt] = rs;
        size[rs] += size[rt];
        out[2 * count] = s;
        out[2 * count + 1] = t;
        ++count;
      }
      ok_all[b] = count == n_tree;
    }
  });
  return {tree, ok};
}

}  // namespace grootvl
