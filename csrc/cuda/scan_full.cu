// Full tree scan on the GPU, forward and backward (reference-grootvl.md 1.6, 1.7):
// y_i = sum over all j of S(i, j) x_j. Oracle: reference.py `scan_full_fwd` / `scan_full_bwd`.
//
// Grid (B, ceil(D / 32)), 32 threads: thread d walks both passes for channel d of image b on
// (B, V, D) sorted-order copies made by scan_layout (coalesced). Inputs are never written.
// float16 / bfloat16 inputs are read and outputs written in that dtype; the copies and the
// arithmetic are float32.
#include "common.cuh"
#include "scan_layout.cuh"
#include "scan_passes.cuh"
#include "tree_scan.h"

#include <ATen/OpMathType.h>

namespace grootvl {
namespace {

using namespace cuda_detail;

constexpr int kChannels = 32;

// us: x on entry, U on exit; ys: Y. All (B, V, D) sorted order.
template <typename T>
__global__ void full_fwd_kernel(T* us, T* ys, const T* __restrict__ es, const int32_t* __restrict__ par,
                                int n_vert, int64_t n_chan) {
  const int64_t b = blockIdx.x;
  const int64_t d = static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x;
  if (d >= n_chan) return;  // no barriers in this kernel
  const int64_t off = b * n_vert * n_chan + d;
  const int32_t* pb = par + b * n_vert;
  leaf_to_root(us + off, es + off, pb, n_vert, n_chan);
  root_to_leaf_full(us + off, ys + off, es + off, pb, n_vert, n_chan);
}

// ug: g on entry, Ug on exit; yg: Yg (= dL/dx); ge: dL/de. All (B, V, D) sorted order.
template <typename T>
__global__ void full_bwd_kernel(T* ug, T* yg, const T* __restrict__ es, const T* __restrict__ ux,
                                const T* __restrict__ yx, T* __restrict__ ge, const int32_t* __restrict__ par,
                                int n_vert, int64_t n_chan) {
  const int64_t b = blockIdx.x;
  const int64_t d = static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x;
  if (d >= n_chan) return;
  const int64_t off = b * n_vert * n_chan + d;
  const int32_t* pb = par + b * n_vert;
  leaf_to_root(ug + off, es + off, pb, n_vert, n_chan);
  root_to_leaf_full_grad(ug + off, yg + off, es + off, ux + off, yx + off, ge + off, pb, n_vert, n_chan);
}

dim3 channel_grid(int64_t batch, int64_t n_chan, int64_t n_vert) {
  TORCH_CHECK(n_vert < (int64_t{1} << 31), "tree scan (CUDA): V must be < 2^31, got ", n_vert);
  const int64_t tiles = ceil_div(n_chan, kChannels);
  TORCH_CHECK(tiles <= 65535, "tree scan (CUDA): at most ", 65535 * kChannels, " channels, got ", n_chan);
  TORCH_CHECK(batch < (int64_t{1} << 31), "tree scan (CUDA): batch too large: ", batch);
  return dim3(static_cast<unsigned>(batch), static_cast<unsigned>(tiles));
}

}  // namespace

// float16 / bfloat16: the sorted-order working copies, the passes and the returned `u` are float32
// (the compute dtype `wide`); y and the gradients come back in the caller's dtypes.
Pair scan_full_fwd_cuda(const Tensor& x, const Tensor& a, const Tensor& order, const Tensor& parent,
                        const Tensor& /*depth*/) {
  const c10::cuda::CUDAGuard guard(x.device());
  const int64_t batch = x.size(0), n_chan = x.size(1), n_vert = x.size(2);
  const at::ScalarType wide = at::toOpMathType(x.scalar_type());
  if (x.numel() == 0) return {at::empty_like(x), at::empty_like(x, x.options().dtype(wide))};
  const ScanTree tree = make_scan_tree(order, parent);
  Tensor us = to_sorted(x, tree.inv, wide);  // becomes U
  const Tensor es = to_sorted(a, tree.inv, wide);
  Tensor ys = at::empty_like(us);
  const dim3 grid = channel_grid(batch, n_chan, n_vert);
  AT_DISPATCH_FLOATING_TYPES(wide, "grootvl_scan_full_fwd", [&] {
    full_fwd_kernel<scalar_t><<<grid, kChannels, 0, at::cuda::getCurrentCUDAStream()>>>(
        us.data_ptr<scalar_t>(), ys.data_ptr<scalar_t>(), es.data_ptr<scalar_t>(), tree.par.data_ptr<int32_t>(),
        static_cast<int>(n_vert), n_chan);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {to_vertex(ys, tree.inv, x.scalar_type()), to_vertex(us, Tensor(), wide)};
}

Pair scan_full_bwd_cuda(const Tensor& g, const Tensor& a, const Tensor& order, const Tensor& parent,
                        const Tensor& /*depth*/, const Tensor& y, const Tensor& u) {
  const c10::cuda::CUDAGuard guard(g.device());
  const int64_t batch = g.size(0), n_chan = g.size(1), n_vert = g.size(2);
  if (g.numel() == 0) return {at::empty_like(g), at::empty_like(a)};
  const at::ScalarType wide = at::toOpMathType(g.scalar_type());
  const ScanTree tree = make_scan_tree(order, parent);
  Tensor ug = to_sorted(g, tree.inv, wide);  // becomes Ug
  const Tensor es = to_sorted(a, tree.inv, wide);
  const Tensor ux = to_sorted(u, Tensor(), wide);  // u is already in sorted order (and wide)
  const Tensor yx = to_sorted(y, tree.inv, wide);
  Tensor yg = at::empty_like(ug);
  Tensor ge = at::empty_like(ug);
  const dim3 grid = channel_grid(batch, n_chan, n_vert);
  AT_DISPATCH_FLOATING_TYPES(wide, "grootvl_scan_full_bwd", [&] {
    full_bwd_kernel<scalar_t><<<grid, kChannels, 0, at::cuda::getCurrentCUDAStream()>>>(
        ug.data_ptr<scalar_t>(), yg.data_ptr<scalar_t>(), es.data_ptr<scalar_t>(), ux.data_ptr<scalar_t>(),
        yx.data_ptr<scalar_t>(), ge.data_ptr<scalar_t>(), tree.par.data_ptr<int32_t>(), static_cast<int>(n_vert),
        n_chan);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {to_vertex(yg, tree.inv, g.scalar_type()), to_vertex(ge, tree.inv, a.scalar_type())};
}

}  // namespace grootvl
