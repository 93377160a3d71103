// Shared machinery of the CPU tree scans (csrc/cpu/scan_full.cpp, csrc/cpu/scan_subtree.cpp;
// reference-grootvl.md 1.6-1.9).
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

// Validates the tree and packs, for every position i of every batch element, the vertex at i and
// the vertex of its parent: walk[2 (b V + i)] = order[b, i], walk[2 (b V + i) + 1] = order[b, parent[b, i]]
// (the root's parent is itself). Rejects, with an error, any tree that would make a scan read or
// write out of bounds: `order[b]` must be a permutation of [0, V) and `parent[b, i]` must lie in
// [0, i) for every non-root position (parents before children). O(B V), cheap next to the scan.
inline std::vector<int64_t> tree_walk(const char* op, const Tensor& order, const Tensor& parent) {
  const int64_t batch = order.size(0), n = order.size(1);
  const Tensor oc = order.contiguous(), pc = parent.contiguous();
  const int64_t* ord = oc.data_ptr<int64_t>();
  const int64_t* par = pc.data_ptr<int64_t>();
  std::vector<int64_t> walk(2 * batch * n);
  std::vector<char> seen(n);
  for (int64_t b = 0; b < batch; ++b) {
    std::fill(seen.begin(), seen.end(), 0);
    const int64_t* o = ord + b * n;
    const int64_t* p = par + b * n;
    int64_t* w = walk.data() + 2 * b * n;
    for (int64_t i = 0; i < n; ++i) {
      const int64_t v = o[i];
      TORCH_CHECK(v >= 0 && v < n && !seen[v], op, ": order[", b, "] must be a permutation of [0, ", n,
                  "); position ", i, " holds ", v, ". Build the tree with grootvl_core.ops.bfs");
      seen[v] = 1;
      TORCH_CHECK(i == 0 || (p[i] >= 0 && p[i] < i), op, ": parent[", b, ", ", i, "] = ", p[i],
                  " must be a position in [0, ", i, ") (parents come before children)");
      w[2 * i] = v;
      w[2 * i + 1] = i == 0 ? v : o[p[i]];
    }
  }
  return walk;
}

// Where a (B, D, V) tensor keeps element [b, d, v]: at b * batch + d * chan + v * vert. Two
// layouts reach the kernels (the bindings check): contiguous (chan = V, vert = 1) and channels-last
// (chan = 1, vert = D), the memory of a contiguous (B, V, D) tensor, which is how GrootV's TreeSSM
// computes its inputs and wants its output. Every tensor of a call has its own layout.
struct Layout {
  int64_t batch, chan, vert;
};

inline Layout layout_of(const Tensor& t) { return {t.stride(0), t.stride(1), t.stride(2)}; }

// One (batch, channel block) tile of the (B, D, V) problem: channels [d0, d0 + nk) of batch
// element b (nk <= kBlock are real), and `walk`, the batch element's (vertex, parent vertex) pairs.
template <typename scalar_t>
struct Tile {
  static constexpr int64_t kBlock = block_size<scalar_t>();
  int64_t n;             // V
  int64_t nk;            // real channels in this block (<= kBlock)
  int64_t b, d0;         // batch element and first channel
  const int64_t* walk;   // walk[2 i] = vertex at position i, walk[2 i + 1] = its parent's vertex
  int64_t vertex(int64_t i) const { return walk[2 * i]; }
  int64_t parent_vertex(int64_t i) const { return walk[2 * i + 1]; }
  int64_t offset(const Layout& l) const { return b * l.batch + d0 * l.chan; }
};

// Square block transpose dst[c * ds + r] = src[r * ss + c] for r, c < R, R = 16 bytes / scalar:
// 4x4 floats or 2x2 doubles in SSE registers where available, a scalar loop elsewhere.
template <typename scalar_t>
constexpr int64_t transpose_width() {
  return 16 / static_cast<int64_t>(sizeof(scalar_t));
}

template <typename scalar_t, typename Rows>
inline void transpose_square(const Rows& row, scalar_t* __restrict dst, int64_t ds) {
  constexpr int64_t R = transpose_width<scalar_t>();
  for (int64_t r = 0; r < R; ++r) {
    const scalar_t* src = row(r);
    for (int64_t c = 0; c < R; ++c) dst[c * ds + r] = src[c];
  }
}

#if defined(__SSE2__)
template <typename Rows>
inline void transpose_square(const Rows& row, float* __restrict dst, int64_t ds) {
  __m128 r0 = _mm_loadu_ps(row(0)), r1 = _mm_loadu_ps(row(1));
  __m128 r2 = _mm_loadu_ps(row(2)), r3 = _mm_loadu_ps(row(3));
  _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
  _mm_storeu_ps(dst, r0);
  _mm_storeu_ps(dst + ds, r1);
  _mm_storeu_ps(dst + 2 * ds, r2);
  _mm_storeu_ps(dst + 3 * ds, r3);
}

template <typename Rows>
inline void transpose_square(const Rows& row, double* __restrict dst, int64_t ds) {
  const __m128d r0 = _mm_loadu_pd(row(0)), r1 = _mm_loadu_pd(row(1));
  _mm_storeu_pd(dst, _mm_unpacklo_pd(r0, r1));
  _mm_storeu_pd(dst + ds, _mm_unpackhi_pd(r0, r1));
}
#endif

// dst[k] = src[k] over one line, inlined (constant trip count: a few vector moves).
template <typename scalar_t>
inline void copy_line(scalar_t* __restrict dst, const scalar_t* __restrict src) {
  constexpr int64_t K = Tile<scalar_t>::kBlock;
  GROOTVL_SIMD
  for (int64_t k = 0; k < K; ++k) dst[k] = src[k];
}

// dst[v][k] = src[k][v] for the tile's channels: (B, D, V) -> [V][kBlock] scratch, padding
// channels zeroed. Contiguous sources are transposed in R x R blocks; channels-last sources are
// already vertex-major (one short row copy per vertex).
template <typename scalar_t>
inline void load_tile(const Tile<scalar_t>& t, const scalar_t* __restrict src, const Layout& l,
                      scalar_t* __restrict dst) {
  constexpr int64_t K = Tile<scalar_t>::kBlock;
  constexpr int64_t R = transpose_width<scalar_t>();
  const scalar_t* s = src + t.offset(l);
  const int64_t n = t.n;
  if (l.vert != 1 && l.chan == 1) {
    if (t.nk == K) {  // a whole line per vertex (inlined: a memcpy call per 64 bytes costs more)
      for (int64_t v = 0; v < n; ++v) copy_line<scalar_t>(dst + v * K, s + v * l.vert);
      return;
    }
    for (int64_t v = 0; v < n; ++v) {
      const scalar_t* row = s + v * l.vert;
      scalar_t* out = dst + v * K;
      int64_t k = 0;
      for (; k < t.nk; ++k) out[k] = row[k];
      for (; k < K; ++k) out[k] = scalar_t(0);
    }
    return;
  }
  const int64_t cs = l.chan, vs = l.vert;
  const int64_t kfull = vs == 1 ? t.nk / R * R : 0, vfull = vs == 1 ? n / R * R : 0;
  for (int64_t v0 = 0; v0 < vfull; v0 += R)
    for (int64_t k0 = 0; k0 < kfull; k0 += R) {
      const scalar_t* base = s + k0 * cs + v0;
      transpose_square([&](int64_t r) { return base + r * cs; }, dst + v0 * K + k0, K);
    }
  for (int64_t v = vfull; v < n; ++v)
    for (int64_t k = 0; k < kfull; ++k) dst[v * K + k] = s[k * cs + v * vs];
  if (kfull < K) {
    for (int64_t v = 0; v < n; ++v) {
      int64_t k = kfull;
      for (; k < t.nk; ++k) dst[v * K + k] = s[k * cs + v * vs];
      for (; k < K; ++k) dst[v * K + k] = scalar_t(0);
    }
  }
}

// dst[k][i] = src[row(i)][k] for the tile's real channels: [V][kBlock] scratch -> (B, D, V), where
// row(i) is the scratch row stored at column i (i itself, or the vertex at position i).
template <typename scalar_t, typename RowOf>
inline void store_tile_rows(const Tile<scalar_t>& t, const scalar_t* __restrict src, const RowOf& row_of,
                            const Layout& l, scalar_t* __restrict dst) {
  constexpr int64_t K = Tile<scalar_t>::kBlock;
  constexpr int64_t R = transpose_width<scalar_t>();
  scalar_t* d = dst + t.offset(l);
  const int64_t n = t.n;
  if (l.vert != 1 && l.chan == 1) {
    if (t.nk == K) {
      for (int64_t i = 0; i < n; ++i) copy_line<scalar_t>(d + i * l.vert, src + row_of(i) * K);
      return;
    }
    const size_t bytes = static_cast<size_t>(t.nk) * sizeof(scalar_t);
    for (int64_t i = 0; i < n; ++i) std::memcpy(d + i * l.vert, src + row_of(i) * K, bytes);
    return;
  }
  const int64_t cs = l.chan, vs = l.vert;
  const int64_t kfull = vs == 1 ? t.nk / R * R : 0, vfull = vs == 1 ? n / R * R : 0;
  for (int64_t i0 = 0; i0 < vfull; i0 += R) {
    const scalar_t* rows[R];
    for (int64_t r = 0; r < R; ++r) rows[r] = src + row_of(i0 + r) * K;
    for (int64_t k0 = 0; k0 < kfull; k0 += R)
      transpose_square([&](int64_t r) { return rows[r] + k0; }, d + k0 * cs + i0, cs);
  }
  for (int64_t i = vfull; i < n; ++i)
    for (int64_t k = 0; k < kfull; ++k) d[k * cs + i * vs] = src[row_of(i) * K + k];
  for (int64_t k = kfull; k < t.nk; ++k)
    for (int64_t i = 0; i < n; ++i) d[k * cs + i * vs] = src[row_of(i) * K + k];
}

// dst[k][v] = src[v][k]: vertex-major scratch -> (B, D, V) in vertex order.
template <typename scalar_t>
inline void store_tile(const Tile<scalar_t>& t, const scalar_t* src, const Layout& l, scalar_t* dst) {
  store_tile_rows(t, src, [](int64_t i) { return i; }, l, dst);
}

// dst[k][i] = src[v(i)][k]: vertex-major scratch -> (B, D, V) in sorted (position) order.
template <typename scalar_t>
inline void store_tile_sorted(const Tile<scalar_t>& t, const scalar_t* src, const Layout& l, scalar_t* dst) {
  store_tile_rows(t, src, [&t](int64_t i) { return t.vertex(i); }, l, dst);
}

// up[k] += e[k] * u[k] over one line; the pointers never alias (a vertex and its parent).
template <typename scalar_t>
inline void axpy_line(scalar_t* __restrict up, const scalar_t* __restrict e, const scalar_t* __restrict u) {
  constexpr int64_t K = Tile<scalar_t>::kBlock;
  GROOTVL_SIMD
  for (int64_t k = 0; k < K; ++k) up[k] += e[k] * u[k];
}

// Pass 1 (leaf to root) on vertex-major scratch, in place: U[v(p(i))] += e[v(i)] * U[v(i)] for
// positions i = V-1 .. 1.
template <typename scalar_t>
inline void leaf_to_root(const Tile<scalar_t>& t, const scalar_t* e, scalar_t* u) {
  constexpr int64_t K = Tile<scalar_t>::kBlock;
  for (int64_t i = t.n - 1; i >= 1; --i) {
    const int64_t v = t.vertex(i), pv = t.parent_vertex(i);
    axpy_line<scalar_t>(u + pv * K, e + v * K, u + v * K);
  }
}

// Uninitialised scratch memory for one thread. Up to kKeepBytes stay allocated per thread
// between calls (a fresh multi-page allocation per call costs page faults comparable to the
// scan itself at GrootV sizes); larger requests are freed when the lease ends.
template <typename scalar_t>
class ScratchLease {
 public:
  static constexpr size_t kKeepBytes = size_t{8} << 20;

  explicit ScratchLease(int64_t count) {
    const size_t bytes = static_cast<size_t>(count) * sizeof(scalar_t) + 64;
    Cache& c = cache();
    if (bytes <= kKeepBytes) {
      if (c.bytes < bytes) {
        c.data.reset(new char[bytes]);
        c.bytes = bytes;
      }
      base_ = c.data.get();
    } else {
      own_.reset(new char[bytes]);
      base_ = own_.get();
    }
  }
  // 64-byte aligned, so every [kBlock] line is one cache line
  scalar_t* get() const {
    const auto addr = reinterpret_cast<uintptr_t>(base_);
    return reinterpret_cast<scalar_t*>((addr + 63) & ~uintptr_t{63});
  }

 private:
  struct Cache {
    std::unique_ptr<char[]> data;
    size_t bytes = 0;
  };
  static Cache& cache() {
    static thread_local Cache c;
    return c;
  }
  char* base_ = nullptr;
  std::unique_ptr<char[]> own_;
};

// Runs `fn(tile, scratch)` for every (batch, channel block) of a (B, D, V) problem, in parallel;
// `scratch` holds `buffers` uninitialised [V][kBlock] buffers, allocated once per thread range.
template <typename scalar_t, typename Fn>
inline void for_each_tile(int64_t batch, int64_t channels, int64_t n, const std::vector<int64_t>& walk,
                          int64_t buffers, const Fn& fn) {
  constexpr int64_t K = Tile<scalar_t>::kBlock;
  const int64_t blocks = (channels + K - 1) / K;
  if (n == 0) return;  // empty tensors: nothing to scan (and no root position to touch)
  at::parallel_for(0, batch * blocks, 1, [&](int64_t begin, int64_t end) {
    ScratchLease<scalar_t> scratch(buffers * n * K);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t b = task / blocks, d0 = (task % blocks) * K;
      Tile<scalar_t> t{n, std::min(K, channels - d0), b, d0, walk.data() + 2 * b * n};
      fn(t, scratch.get());
    }
  });
}

}  // namespace cpu
}  // namespace grootvl
