// Shared machinery of the CPU tree scans (csrc/cpu/scan_full.cpp, csrc/cpu/scan_subtree.cpp).
//
// The scans walk BFS positions with a data-dependent parent gather, while channels are
// independent. So each task owns one (batch, block of kBlock channels) tile and transposes it
// into a vertex-major scratch buffer `[V][kBlock]` (a plain blocked transpose, no permutation):
// the per-position inner loop then runs over kBlock contiguous channels (one 64-byte line,
// vectorised) and every tree gather moves a whole line. Partial channel blocks are zero-padded
// in scratch, so every inner loop has a constant trip count.
#pragma once

#include "tree_scan.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#include <xmmintrin.h>
#endif

// The per-line loops below have independent iterations over contiguous channels; ask for SIMD
// explicitly (GCC does not vectorise them on its own at -O3 without -march flags).
#if defined(_OPENMP)
#define GROOTVL_SIMD _Pragma("omp simd")
#else
#define GROOTVL_SIMD
#endif

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

// Square block transpose dst[c * ds + r] = src[r * ss + c] for r, c < R, R = 16 bytes / scalar:
// 4x4 floats or 2x2 doubles in SSE registers where available, a scalar loop elsewhere.
template <typename scalar_t>
constexpr int64_t transpose_width() {
  return 16 / static_cast<int64_t>(sizeof(scalar_t));
}

template <typename scalar_t>
inline void transpose_square(const scalar_t* __restrict src, int64_t ss, scalar_t* __restrict dst, int64_t ds) {
  constexpr int64_t R = transpose_width<scalar_t>();
  for (int64_t r = 0; r < R; ++r)
    for (int64_t c = 0; c < R; ++c) dst[c * ds + r] = src[r * ss + c];
}

#if defined(__SSE2__)
template <>
inline void transpose_square<float>(const float* __restrict src, int64_t ss, float* __restrict dst, int64_t ds) {
  __m128 r0 = _mm_loadu_ps(src), r1 = _mm_loadu_ps(src + ss);
  __m128 r2 = _mm_loadu_ps(src + 2 * ss), r3 = _mm_loadu_ps(src + 3 * ss);
  _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
  _mm_storeu_ps(dst, r0);
  _mm_storeu_ps(dst + ds, r1);
  _mm_storeu_ps(dst + 2 * ds, r2);
  _mm_storeu_ps(dst + 3 * ds, r3);
}

template <>
inline void transpose_square<double>(const double* __restrict src, int64_t ss, double* __restrict dst, int64_t ds) {
  const __m128d r0 = _mm_loadu_pd(src), r1 = _mm_loadu_pd(src + ss);
  _mm_storeu_pd(dst, _mm_unpacklo_pd(r0, r1));
  _mm_storeu_pd(dst + ds, _mm_unpackhi_pd(r0, r1));
}
#endif

// dst[v][k] = src[k][v] for the tile's channels: (B, D, V) -> [V][kBlock] scratch, padding
// channels zeroed.
template <typename scalar_t>
inline void load_tile(const Tile<scalar_t>& t, const scalar_t* __restrict src, scalar_t* __restrict dst) {
  constexpr int64_t K = Tile<scalar_t>::kBlock;
  constexpr int64_t R = transpose_width<scalar_t>();
  const scalar_t* s = src + t.offset;
  const int64_t n = t.n, kfull = t.nk / R * R, vfull = n / R * R;
  for (int64_t v0 = 0; v0 < vfull; v0 += R)
    for (int64_t k0 = 0; k0 < kfull; k0 += R) transpose_square(s + k0 * n + v0, n, dst + v0 * K + k0, K);
  for (int64_t v = vfull; v < n; ++v)
    for (int64_t k = 0; k < kfull; ++k) dst[v * K + k] = s[k * n + v];
  if (kfull < K) {
    for (int64_t v = 0; v < n; ++v) {
      int64_t k = kfull;
      for (; k < t.nk; ++k) dst[v * K + k] = s[k * n + v];
      for (; k < K; ++k) dst[v * K + k] = scalar_t(0);
    }
  }
}

// dst[k][v] = src[v][k] for the tile's real channels: [V][kBlock] scratch -> (B, D, V).
template <typename scalar_t>
inline void store_tile(const Tile<scalar_t>& t, const scalar_t* __restrict src, scalar_t* __restrict dst) {
  constexpr int64_t K = Tile<scalar_t>::kBlock;
  constexpr int64_t R = transpose_width<scalar_t>();
  scalar_t* d = dst + t.offset;
  const int64_t n = t.n, kfull = t.nk / R * R, vfull = n / R * R;
  for (int64_t v0 = 0; v0 < vfull; v0 += R)
    for (int64_t k0 = 0; k0 < kfull; k0 += R) transpose_square(src + v0 * K + k0, K, d + k0 * n + v0, n);
  for (int64_t v = vfull; v < n; ++v)
    for (int64_t k = 0; k < kfull; ++k) d[k * n + v] = src[v * K + k];
  for (int64_t k = kfull; k < t.nk; ++k)
    for (int64_t v = 0; v < n; ++v) d[k * n + v] = src[v * K + k];
}

// up[k] += e[k] * u[k] over one line; the pointers never alias (a vertex and its parent).
template <typename scalar_t>
inline void axpy_line(scalar_t* __restrict up, const scalar_t* __restrict e, const scalar_t* __restrict u) {
  constexpr int64_t K = Tile<scalar_t>::kBlock;
  GROOTVL_SIMD
  for (int64_t k = 0; k < K; ++k) up[k] += e[k] * u[k];
}

// Pass 1 (leaf to root) on vertex-major scratch, in place: U[v(p(i))] += e[v(i)] * U[v(i)] for
// positions i = V-1 .. 1. If `sorted` is given, it receives the finished U of every position in
// position order (sorted[i] = U[v(i)]), which is what the full scan's backward needs.
template <typename scalar_t>
inline void leaf_to_root(const Tile<scalar_t>& t, const scalar_t* e, scalar_t* u, scalar_t* sorted) {
  constexpr int64_t K = Tile<scalar_t>::kBlock;
  for (int64_t i = t.n - 1; i >= 1; --i) {
    const int64_t v = t.order[i];
    scalar_t* up = u + t.order[t.parent[i]] * K;
    const scalar_t* ui = u + v * K;
    const scalar_t* ei = e + v * K;
    axpy_line<scalar_t>(up, ei, ui);
    if (sorted != nullptr) std::memcpy(sorted + i * K, ui, K * sizeof(scalar_t));
  }
  if (sorted != nullptr) std::memcpy(sorted, u + t.order[0] * K, K * sizeof(scalar_t));
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
