// Shared helpers of the CUDA tree-scan backend (csrc/cuda/*.cu): launch sizes, a block-wide
// exclusive scan, the float32 total-order key used by the MST, and the "shared memory if it
// fits, else global scratch" rule of the one-block-per-graph kernels.
#pragma once

#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>

#include <cstdint>

namespace grootvl {
namespace cuda_detail {

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Largest dynamic shared memory one block of the current device may opt in to.
inline int64_t max_dynamic_smem() {
  return static_cast<int64_t>(at::cuda::getCurrentDeviceProperties()->sharedMemPerBlockOptin);
}

// Opt `kernel` in to `bytes` of dynamic shared memory (needed above 48 KiB). Host-side attribute
// call: no synchronisation with the device.
template <typename Kernel>
inline void allow_dynamic_smem(Kernel kernel, int64_t bytes) {
  if (bytes > 48 * 1024) {
    C10_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        static_cast<int>(bytes)));
  }
}

// Monotone map of a float32 onto uint32 for the total order "lower value first, NaN last":
// -0.0 and +0.0 map to the same key (they compare equal, as in torch.sort), every NaN maps to the
// largest key. Equal keys are then ordered by edge index by the caller.
__device__ __forceinline__ uint32_t float_order_key(float w) {
  if (isnan(w)) return 0xFFFFFFFFu;
  if (w == 0.0f) w = 0.0f;
  const uint32_t u = __float_as_uint(w);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// Block-wide exclusive prefix sum of one int per thread; `total` receives the block sum.
// Every thread of the block must call it (it contains __syncthreads). `scratch` holds at least
// 33 ints of shared memory. blockDim.x must be a multiple of 32 and at most 1024.
__device__ __forceinline__ int block_exclusive_sum(int value, int* scratch, int* total) {
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int n_warps = blockDim.x >> 5;
  int incl = value;
#pragma unroll
  for (int off = 1; off < 32; off <<= 1) {
    const int other = __shfl_up_sync(0xFFFFFFFFu, incl, off);
    if (lane >= off) incl += other;
  }
  if (lane == 31) scratch[warp] = incl;
  __syncthreads();
  if (warp == 0) {
    int w = lane < n_warps ? scratch[lane] : 0;
#pragma unroll
    for (int off = 1; off < 32; off <<= 1) {
      const int other = __shfl_up_sync(0xFFFFFFFFu, w, off);
      if (lane >= off) w += other;
    }
    if (lane < n_warps) scratch[lane] = w;  // inclusive warp totals
    if (lane == 31) scratch[32] = w;
  }
  __syncthreads();
  const int before = (warp == 0 ? 0 : scratch[warp - 1]) + incl - value;
  *total = scratch[32];
  __syncthreads();  // scratch may be reused by the caller's next call
  return before;
}

}  // namespace cuda_detail
}  // namespace grootvl
