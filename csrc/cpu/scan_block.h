// Shared machinery of the CPU tree scans (csrc/cpu/scan_full.cpp, csrc/cpu/scan_subtree.cpp).
//
// The scans walk BFS positions with a data-dependent parent gather, while channels are
// independent. So each task owns one (batch, block of kBlock channels) tile and keeps it in a
// position-major scratch buffer `[V][kBlock]`: the per-position inner loop then runs over
// kBlock contiguous channels (one 64-byte line, vectorised), and the gathers move whole lines.
// Partial channel blocks are zero-padded in scratch, so every inner loop has a constant trip count.
#pragma once

#include "tree_scan.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

namespace grootvl {
namespace cpu {

// Channels per tile: one 64-byte cache line of scalar_t.
template <typename scalar_t>
constexpr int64_t block_size() {
  return 64 / static_cast<int64_t>(sizeof(scalar_t));
}

// Rejects a tree that would make the scan read or write out of bounds: `order[b]` must be a
// permutation of [0, V) and `parent[b, i]` must lie in [0, i) for every non-root position
// (parents before children). Cheap next to the O(B D V) scan.
inline void check_tree(const char* op, const Tensor& order, const Tensor& parent) {
  const int64_t batch = order.size(0), n = order.size(1);
  const int64_t* ord = order.data_ptr<int64_t>();
  const int64_t* par = parent.data_ptr<int64_t>();
  std::vector<char> seen(n);
  for (int64_t b = 0; b < batch; ++b) {
    std::fill(seen.begin(), seen.end(), 0);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t v = ord[b * n + i];
      TORCH_CHECK(v >= 0 && v < n && !seen[v], op, ": order[", b, "] must be a permutation of [0, ", n,
                  "); position ", i, " holds ", v, ". Build the tree with grootvl_core.ops.bfs");
      seen[v] = 1;
      const int64_t p = par[b * n + i];
      TORCH_CHECK(i == 0 || (p >= 0 && p < i), op, ": parent[", b, ", ", i, "] = ", p,
                  " must be a position in [0, ", i, ") (parents come before children)");
    }
  }
}

// One (batch, channel block) tile of a (B, D, V) tensor: `base` points at [b, d0, 0], `nk` of
// the kBlock channels are real.
template <typename scalar_t>
struct Tile {
  static constexpr int64_t kBlock = block_size<scalar_t>();
  int64_t n;        // V
  int64_t nk;       // real channels in this block (<= kBlock)
  int64_t offset;   // element offset of [b, d0, 0]
  const int64_t* order;   // order[b]
  const int64_t* parent;  // parent[b]
};

// dst[i][k] = src[k][order[i]]  (vertex space -> position-major scratch; padding zeroed)
template <typename scalar_t>
inline void gather_sorted(const Tile<scalar_t>& t, const scalar_t* src, scalar_t* dst) {
  constexpr int64_t K = Tile<scalar_t>::kBlock;
  const scalar_t* s = src + t.offset;
  if (t.nk == K) {
    for (int64_t i = 0; i < t.n; ++i) {
      const int64_t v = t.order[i];
      scalar_t* row = dst + i * K;
      for (int64_t k = 0; k < K; ++k) row[k] = s[k * t.n + v];
    }
  } else {
    for (int64_t i = 0; i < t.n; ++i) {
      const int64_t v = t.order[i];
      scalar_t* row = dst + i * K;
      int64_t k = 0;
      for (; k < t.nk; ++k) row[k] = s[k * t.n + v];
      for (; k < K; ++k) row[k] = scalar_t(0);
    }
  }
}

// dst[k][order[i]] = src[i][k]  (position-major scratch -> vertex space)
template <typename scalar_t>
inline void scatter_vertex(const Tile<scalar_t>& t, const scalar_t* src, scalar_t* dst) {
  constexpr int64_t K = Tile<scalar_t>::kBlock;
  scalar_t* d = dst + t.offset;
  if (t.nk == K) {
    for (int64_t i = 0; i < t.n; ++i) {
      const int64_t v = t.order[i];
      const scalar_t* row = src + i * K;
      for (int64_t k = 0; k < K; ++k) d[k * t.n + v] = row[k];
    }
  } else {
    for (int64_t i = 0; i < t.n; ++i) {
      const int64_t v = t.order[i];
      const scalar_t* row = src + i * K;
      for (int64_t k = 0; k < t.nk; ++k) d[k * t.n + v] = row[k];
    }
  }
}

// dst[k][i] = src[i][k]  (position-major scratch -> sorted space (B, D, V))
template <typename scalar_t>
inline void store_sorted(const Tile<scalar_t>& t, const scalar_t* src, scalar_t* dst) {
  constexpr int64_t K = Tile<scalar_t>::kBlock;
  scalar_t* d = dst + t.offset;
  for (int64_t k = 0; k < t.nk; ++k) {
    scalar_t* out = d + k * t.n;
    for (int64_t i = 0; i < t.n; ++i) out[i] = src[i * K + k];
  }
}

// dst[i][k] = src[k][i]  (sorted space (B, D, V) -> position-major scratch; padding zeroed)
template <typename scalar_t>
inline void load_sorted(const Tile<scalar_t>& t, const scalar_t* src, scalar_t* dst) {
  constexpr int64_t K = Tile<scalar_t>::kBlock;
  const scalar_t* s = src + t.offset;
  if (t.nk < K) std::fill(dst, dst + t.n * K, scalar_t(0));
  for (int64_t k = 0; k < t.nk; ++k) {
    const scalar_t* in = s + k * t.n;
    for (int64_t i = 0; i < t.n; ++i) dst[i * K + k] = in[i];
  }
}

// Pass 1 (leaf to root), in place: U[p(i)] += e_i * U[i] for i = V-1 .. 1.
template <typename scalar_t>
inline void leaf_to_root(const Tile<scalar_t>& t, const scalar_t* e, scalar_t* u) {
  constexpr int64_t K = Tile<scalar_t>::kBlock;
  for (int64_t i = t.n - 1; i >= 1; --i) {
    scalar_t* up = u + t.parent[i] * K;
    const scalar_t* ui = u + i * K;
    const scalar_t* ei = e + i * K;
    for (int64_t k = 0; k < K; ++k) up[k] += ei[k] * ui[k];
  }
}

// Runs `fn(tile, scratch)` for every (batch, channel block) of a (B, D, V) problem, in parallel;
// `scratch` holds `buffers` uninitialised [V][kBlock] buffers, allocated once per thread range.
template <typename scalar_t, typename Fn>
inline void for_each_tile(int64_t batch, int64_t channels, int64_t n, const Tensor& order, const Tensor& parent,
                          int64_t buffers, const Fn& fn) {
  constexpr int64_t K = Tile<scalar_t>::kBlock;
  const int64_t blocks = (channels + K - 1) / K;
  const int64_t* ord = order.data_ptr<int64_t>();
  const int64_t* par = parent.data_ptr<int64_t>();
  at::parallel_for(0, batch * blocks, 1, [&](int64_t begin, int64_t end) {
    std::unique_ptr<scalar_t[]> scratch(new scalar_t[buffers * n * K]);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t b = task / blocks, d0 = (task % blocks) * K;
      Tile<scalar_t> t{n, std::min(K, channels - d0), (b * channels + d0) * n, ord + b * n, par + b * n};
      fn(t, scratch.get());
    }
  });
}

}  // namespace cpu
}  // namespace grootvl
