// The two passes of the tree scan for ONE channel of ONE image, run by one thread
// (reference-grootvl.md 1.6, 1.7, 1.9; oracle: reference.py `_leaf_to_root`, `_root_to_leaf_*`).
//
// The tree is shared by all D channels, so the kernels give thread d channel d and every thread
// of a warp walks the same positions in lockstep: the tree tables are broadcast reads and the
// values, stored (B, V, D) position-major, are read and written 32 channels per transaction.
// No thread ever waits for another (the published design spins on a shared array instead).
//
// A walk is a chain of dependent memory accesses, so positions are taken in RUNS of up to kRun
// consecutive positions none of which is the parent of another: all loads of a run are issued
// before its stores, which hides memory latency (in BFS order a run is usually part of one
// level). Pointers here are (B, V, D) arrays already offset to (b, 0, d); `stride` is D.
// `par` is the int32 parent-position row of the image, parents before children.
#pragma once

#include <cstdint>

namespace grootvl {
namespace cuda_detail {

constexpr int kRun = 8;

// Pass 1 in place, positions V-1 .. 1 (push form): U[p(i)] += e_i * U[i]. On entry U = x.
// Run: positions top, top-1, ..., top-n+1 whose parents all lie below top-n+1; their children lie
// above top and are final. Siblings in one run add to the same parent in the sequential order.
template <typename T>
__device__ __forceinline__ void leaf_to_root(T* u, const T* __restrict__ e, const int32_t* __restrict__ par,
                                             int n_vert, int64_t stride) {
  int top = n_vert - 1;
  while (top >= 1) {
    int n = 1;
    int max_parent = __ldg(par + top);
#pragma unroll
    for (int m = 1; m < kRun; ++m) {
      const int j = top - m;
      if (j < 1) break;
      max_parent = max(max_parent, __ldg(par + j));
      if (max_parent >= j) break;
      n = m + 1;
    }
    int p[kRun];
    T add[kRun], acc[kRun];
#pragma unroll
    for (int m = 0; m < kRun; ++m) {
      if (m < n) {
        const int64_t j = top - m;
        p[m] = __ldg(par + j);
        add[m] = __ldg(e + j * stride) * u[j * stride];
        acc[m] = u[p[m] * stride];
      }
    }
#pragma unroll
    for (int m = 0; m < kRun; ++m) {
      if (m < n) {
        T base = acc[m];
#pragma unroll
        for (int q = 0; q < m; ++q) {
          if (p[q] == p[m]) base = acc[q];  // a sibling earlier in this run already added
        }
        acc[m] = base + add[m];
      }
    }
#pragma unroll
    for (int m = 0; m < kRun; ++m) {
      if (m < n) u[p[m] * stride] = acc[m];  // repeated parents: the last store is the latest sum
    }
    top -= n;
  }
}

// Length of the run starting at `lo` for the root-to-leaf passes: positions lo .. lo+n-1 whose
// parents all lie below lo.
__device__ __forceinline__ int forward_run(const int32_t* __restrict__ par, int lo, int n_vert) {
  int n = 1;
#pragma unroll
  for (int m = 1; m < kRun; ++m) {
    const int j = lo + m;
    if (j >= n_vert || __ldg(par + j) >= lo) break;
    n = m + 1;
  }
  return n;
}

// Pass 2 of the full scan, positions 1 .. V-1: Y[i] = (1 - e_i^2) U[i] + e_i Y[p(i)], Y[0] = U[0].
template <typename T>
__device__ __forceinline__ void root_to_leaf_full(const T* u, T* y, const T* __restrict__ e,
                                                  const int32_t* __restrict__ par, int n_vert, int64_t stride) {
  y[0] = u[0];
  for (int lo = 1; lo < n_vert;) {
    const int n = forward_run(par, lo, n_vert);
    T yp[kRun];
#pragma unroll
    for (int m = 0; m < kRun; ++m) {
      if (m < n) yp[m] = y[static_cast<int64_t>(__ldg(par + lo + m)) * stride];
    }
#pragma unroll
    for (int m = 0; m < kRun; ++m) {
      if (m < n) {
        const int64_t j = lo + m;
        const T ej = __ldg(e + j * stride);
        y[j * stride] = (T(1) - ej * ej) * u[j * stride] + ej * yp[m];
      }
    }
    lo += n;
  }
}

// Backward of the full scan (reference 1.7), on the pass-1 result Ug of the gradient g:
//   Yg[i] = (1 - e_i^2) Ug[i] + e_i Yg[p]                 (so dL/dx = Yg, M is symmetric)
//   ge[i] = Ug[i] (Yx[p] - e_i Ux[i]) + Ux[i] (Yg[p] - e_i Ug[i]),   ge[0] = 0
// Ux, Yx: the forward's pass-1 and output in sorted order.
template <typename T>
__device__ __forceinline__ void root_to_leaf_full_grad(const T* ug, T* yg, const T* __restrict__ e,
                                                       const T* __restrict__ ux, const T* __restrict__ yx,
                                                       T* __restrict__ ge, const int32_t* __restrict__ par,
                                                       int n_vert, int64_t stride) {
  yg[0] = ug[0];
  ge[0] = T(0);
  for (int lo = 1; lo < n_vert;) {
    const int n = forward_run(par, lo, n_vert);
    T ygp[kRun], yxp[kRun];
#pragma unroll
    for (int m = 0; m < kRun; ++m) {
      if (m < n) {
        const int64_t p = __ldg(par + lo + m);
        ygp[m] = yg[p * stride];
        yxp[m] = __ldg(yx + p * stride);
      }
    }
#pragma unroll
    for (int m = 0; m < kRun; ++m) {
      if (m < n) {
        const int64_t j = lo + m;
        const T ej = __ldg(e + j * stride);
        const T ugj = ug[j * stride];
        const T uxj = __ldg(ux + j * stride);
        yg[j * stride] = (T(1) - ej * ej) * ugj + ej * ygp[m];
        ge[j * stride] = ugj * (yxp[m] - ej * uxj) + uxj * (ygp[m] - ej * ugj);
      }
    }
    lo += n;
  }
}

// Backward of the subtree scan (reference 1.9), in place on g:
//   G[i] = g[i] + e_i G[p(i)], G[0] = g[0]        (dL/dx = G)
//   ge[i] = G[p(i)] * U[i],    ge[0] = 0          (U: the forward output in sorted order)
template <typename T>
__device__ __forceinline__ void root_to_leaf_prefix_grad(T* g, const T* __restrict__ e, const T* __restrict__ us,
                                                         T* __restrict__ ge, const int32_t* __restrict__ par,
                                                         int n_vert, int64_t stride) {
  ge[0] = T(0);
  for (int lo = 1; lo < n_vert;) {
    const int n = forward_run(par, lo, n_vert);
    T gp[kRun];
#pragma unroll
    for (int m = 0; m < kRun; ++m) {
      if (m < n) gp[m] = g[static_cast<int64_t>(__ldg(par + lo + m)) * stride];
    }
#pragma unroll
    for (int m = 0; m < kRun; ++m) {
      if (m < n) {
        const int64_t j = lo + m;
        g[j * stride] = g[j * stride] + __ldg(e + j * stride) * gp[m];
        ge[j * stride] = gp[m] * __ldg(us + j * stride);
      }
    }
    lo += n;
  }
}

}  // namespace cuda_detail
}  // namespace grootvl
