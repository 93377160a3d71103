// Subtree tree scan on the GPU, forward and backward (reference-grootvl.md 1.9, the language
// variant): y_i = sum over j in subtree(i) of S(i, j) x_j. Oracle: reference.py
// `scan_subtree_fwd` / `scan_subtree_bwd`. Same launch scheme as scan_full.cu.
#include "common.cuh"
#include "scan_layout.cuh"
#include "scan_passes.cuh"
#include "tree_scan.h"

#include <ATen/OpMathType.h>

namespace grootvl {
namespace {

using namespace cuda_detail;

constexpr int kChannels = 32;

// us: x on entry, U (the output, sorted order) on exit.
template <typename T>
__global__ void subtree_fwd_kernel(T* us, const T* __restrict__ es, const int32_t* __restrict__ par, int n_vert,
                                   int64_t n_chan) {
  const int64_t b = blockIdx.x;
  const int64_t d = static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x;
  if (d >= n_chan) return;  // no barriers in this kernel
  const int64_t off = b * n_vert * n_chan + d;
  leaf_to_root(us + off, es + off, par + b * n_vert, n_vert, n_chan);
}

// gs: g on entry, G (= dL/dx) on exit; ge: dL/de; us: the forward output. (B, V, D) sorted order.
template <typename T>
__global__ void subtree_bwd_kernel(T* gs, const T* __restrict__ es, const T* __restrict__ us, T* __restrict__ ge,
                                   const int32_t* __restrict__ par, int n_vert, int64_t n_chan) {
  const int64_t b = blockIdx.x;
  const int64_t d = static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x;
  if (d >= n_chan) return;
  const int64_t off = b * n_vert * n_chan + d;
  root_to_leaf_prefix_grad(gs + off, es + off, us + off, ge + off, par + b * n_vert, n_vert, n_chan);
}

dim3 channel_grid(int64_t batch, int64_t n_chan, int64_t n_vert) {
  TORCH_CHECK(n_vert < (int64_t{1} << 31), "tree scan (CUDA): V must be < 2^31, got ", n_vert);
  const int64_t tiles = ceil_div(n_chan, kChannels);
  TORCH_CHECK(tiles <= 65535, "tree scan (CUDA): at most ", 65535 * kChannels, " channels, got ", n_chan);
  TORCH_CHECK(batch < (int64_t{1} << 31), "tree scan (CUDA): batch too large: ", batch);
  return dim3(static_cast<unsigned>(batch), static_cast<unsigned>(tiles));
}

}  // namespace

// float16 / bfloat16: float32 working copies and passes, results in the caller's dtypes.
Tensor scan_subtree_fwd_cuda(const Tensor& x, const Tensor& a, const Tensor& order, const Tensor& parent,
                             const Tensor& /*depth*/) {
  const c10::cuda::CUDAGuard guard(x.device());
  const int64_t batch = x.size(0), n_chan = x.size(1), n_vert = x.size(2);
  if (x.numel() == 0) return at::empty_like(x);
  const at::ScalarType wide = at::toOpMathType(x.scalar_type());
  const ScanTree tree = make_scan_tree(order, parent);
  Tensor us = to_sorted(x, tree.inv, wide);
  const Tensor es = to_sorted(a, tree.inv, wide);
  const dim3 grid = channel_grid(batch, n_chan, n_vert);
  AT_DISPATCH_FLOATING_TYPES(wide, "grootvl_scan_subtree_fwd", [&] {
    subtree_fwd_kernel<scalar_t><<<grid, kChannels, 0, at::cuda::getCurrentCUDAStream()>>>(
        us.data_ptr<scalar_t>(), es.data_ptr<scalar_t>(), tree.par.data_ptr<int32_t>(), static_cast<int>(n_vert),
        n_chan);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return to_vertex(us, tree.inv, x.scalar_type());
}

Pair scan_subtree_bwd_cuda(const Tensor& g, const Tensor& a, const Tensor& order, const Tensor& parent,
                           const Tensor& /*depth*/, const Tensor& y) {
  const c10::cuda::CUDAGuard guard(g.device());
  const int64_t batch = g.size(0), n_chan = g.size(1), n_vert = g.size(2);
  if (g.numel() == 0) return {at::empty_like(g), at::empty_like(a)};
  const at::ScalarType wide = at::toOpMathType(g.scalar_type());
  const ScanTree tree = make_scan_tree(order, parent);
  Tensor gs = to_sorted(g, tree.inv, wide);  // becomes G
  const Tensor es = to_sorted(a, tree.inv, wide);
  const Tensor us = to_sorted(y, tree.inv, wide);
  Tensor ge = at::empty_like(gs);
  const dim3 grid = channel_grid(batch, n_chan, n_vert);
  AT_DISPATCH_FLOATING_TYPES(wide, "grootvl_scan_subtree_bwd", [&] {
    subtree_bwd_kernel<scalar_t><<<grid, kChannels, 0, at::cuda::getCurrentCUDAStream()>>>(
        gs.data_ptr<scalar_t>(), es.data_ptr<scalar_t>(), us.data_ptr<scalar_t>(), ge.data_ptr<scalar_t>(),
        tree.par.data_ptr<int32_t>(), static_cast<int>(n_vert), n_chan);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {to_vertex(gs, tree.inv, g.scalar_type()), to_vertex(ge, tree.inv, a.scalar_type())};
}

}  // namespace grootvl
