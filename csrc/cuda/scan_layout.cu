// Tiled transposes between (B, D, V) vertex order and (B, V, D) sorted order, and the int32 tree
// tables of the CUDA scans (declarations and rationale in scan_layout.cuh).
#include "scan_layout.cuh"

#include "common.cuh"

#include <ATen/OpMathType.h>

namespace grootvl {
namespace cuda_detail {
namespace {

constexpr int kTile = 32;
constexpr int kTileRows = 8;

// inv[b, order[b, i]] = i (inv pre-filled with -1); par[b, i] = parent[b, i] as int32, clamped
// into [0, V) so that a malformed parent never indexes outside the tensors.
__global__ void scan_prep_kernel(const int64_t* __restrict__ order, const int64_t* __restrict__ parent,
                                 int64_t batch, int64_t n_vert, int32_t* __restrict__ inv,
                                 int32_t* __restrict__ par) {
  const int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (idx >= batch * n_vert) return;
  const int64_t b = idx / n_vert, i = idx % n_vert;
  const int64_t v = order[idx];
  if (v >= 0 && v < n_vert) inv[b * n_vert + v] = static_cast<int32_t>(i);
  const int64_t p = parent[idx];
  par[idx] = (i == 0 || p < 0 || p >= n_vert) ? 0 : static_cast<int32_t>(p);
}

// out[b, inv[v], d] = in[b, d, v]: (B, D, V) vertex order -> (B, V, D) sorted order, converted
// from Tin to Tout on the way (float16/bfloat16 -> float32 for the scans).
template <typename Tin, typename Tout>
__global__ void to_sorted_kernel(const Tin* __restrict__ in, const int32_t* __restrict__ inv, int64_t n_vert,
                                 int64_t n_chan, int64_t v_tiles, Tout* __restrict__ out) {
  __shared__ Tout tile[kTile][kTile + 1];
  const int64_t b = blockIdx.x / v_tiles;
  const int64_t v0 = (blockIdx.x % v_tiles) * kTile;
  const int64_t d0 = static_cast<int64_t>(blockIdx.y) * kTile;
  for (int r = threadIdx.y; r < kTile; r += kTileRows) {
    const int64_t d = d0 + r, v = v0 + threadIdx.x;
    if (d < n_chan && v < n_vert) tile[r][threadIdx.x] = static_cast<Tout>(in[(b * n_chan + d) * n_vert + v]);
  }
  __syncthreads();
  for (int r = threadIdx.y; r < kTile; r += kTileRows) {
    const int64_t v = v0 + r, d = d0 + threadIdx.x;
    if (v >= n_vert || d >= n_chan) continue;
    const int64_t i = inv ? inv[b * n_vert + v] : v;
    if (i >= 0 && i < n_vert) out[(b * n_vert + i) * n_chan + d] = tile[threadIdx.x][r];
  }
}

// out[b, d, v] = in[b, inv[v], d]: (B, V, D) sorted order -> (B, D, V) vertex order, converted
// from Tin to Tout on the way (float32 -> float16/bfloat16 after the scans).
template <typename Tin, typename Tout>
__global__ void to_vertex_kernel(const Tin* __restrict__ in, const int32_t* __restrict__ inv, int64_t n_vert,
                                 int64_t n_chan, int64_t v_tiles, Tout* __restrict__ out) {
  __shared__ Tout tile[kTile][kTile + 1];
  const int64_t b = blockIdx.x / v_tiles;
  const int64_t v0 = (blockIdx.x % v_tiles) * kTile;
  const int64_t d0 = static_cast<int64_t>(blockIdx.y) * kTile;
  for (int r = threadIdx.y; r < kTile; r += kTileRows) {
    const int64_t v = v0 + r, d = d0 + threadIdx.x;
    Tout value = static_cast<Tout>(0.0f);
    if (v < n_vert && d < n_chan) {
      const int64_t i = inv ? inv[b * n_vert + v] : v;
      if (i >= 0 && i < n_vert) value = static_cast<Tout>(in[(b * n_vert + i) * n_chan + d]);
    }
    tile[r][threadIdx.x] = value;
  }
  __syncthreads();
  for (int r = threadIdx.y; r < kTile; r += kTileRows) {
    const int64_t d = d0 + r, v = v0 + threadIdx.x;
    if (d < n_chan && v < n_vert) out[(b * n_chan + d) * n_vert + v] = tile[threadIdx.x][r];
  }
}

}  // namespace

ScanTree make_scan_tree(const Tensor& order, const Tensor& parent) {
  const int64_t batch = order.size(0), n_vert = order.size(1);
  ScanTree t{at::full({batch, n_vert}, -1, order.options().dtype(at::kInt)),
             at::empty({batch, n_vert}, order.options().dtype(at::kInt))};
  const int64_t total = batch * n_vert;
  if (total == 0) return t;
  constexpr int kThreads = 256;
  scan_prep_kernel<<<static_cast<unsigned>(ceil_div(total, kThreads)), kThreads, 0,
                     at::cuda::getCurrentCUDAStream()>>>(order.data_ptr<int64_t>(), parent.data_ptr<int64_t>(),
                                                         batch, n_vert, t.inv.data_ptr<int32_t>(),
                                                         t.par.data_ptr<int32_t>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return t;
}

namespace {

dim3 transpose_grid(int64_t batch, int64_t n_chan, int64_t n_vert, int64_t* v_tiles) {
  *v_tiles = ceil_div(n_vert, kTile);
  const int64_t d_tiles = ceil_div(n_chan, kTile);
  TORCH_CHECK(d_tiles <= 65535, "tree scan (CUDA): at most ", 65535 * kTile, " channels, got ", n_chan);
  TORCH_CHECK(batch * *v_tiles < (int64_t{1} << 31), "tree scan (CUDA): B * V too large");
  return dim3(static_cast<unsigned>(batch * *v_tiles), static_cast<unsigned>(d_tiles));
}

}  // namespace

// The launch of a layout kernel for (Tin, Tout), where Tout is Tin or Tin's compute type (float32
// for float16 / bfloat16; float32 and float64 are their own). `wide` is that compute dtype's side.
#define GROOTVL_LAYOUT_LAUNCH(KERNEL, TIN, TOUT)                                                           \
  KERNEL<TIN, TOUT><<<grid, dim3(kTile, kTileRows), 0, at::cuda::getCurrentCUDAStream()>>>(               \
      in.data_ptr<TIN>(), inv.defined() ? inv.data_ptr<int32_t>() : nullptr, n_vert, n_chan, v_tiles, \
      out.data_ptr<TOUT>())

Tensor to_sorted(const Tensor& in, const Tensor& inv, at::ScalarType out_type) {
  const int64_t batch = in.size(0), n_chan = in.size(1), n_vert = in.size(2);
  const at::ScalarType type = in.scalar_type();
  TORCH_CHECK(out_type == type || out_type == at::toOpMathType(type), "tree scan (CUDA): cannot convert ", type,
              " to ", out_type, " in the layout change");
  Tensor out = at::empty({batch, n_vert, n_chan}, in.options().dtype(out_type));
  if (in.numel() == 0) return out;
  int64_t v_tiles;
  const dim3 grid = transpose_grid(batch, n_chan, n_vert, &v_tiles);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, type, "grootvl_to_sorted", [&] {
    using wide_t = at::opmath_type<scalar_t>;
    if (out_type == type) {
      GROOTVL_LAYOUT_LAUNCH(to_sorted_kernel, scalar_t, scalar_t);
    } else {
      GROOTVL_LAYOUT_LAUNCH(to_sorted_kernel, scalar_t, wide_t);
    }
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

Tensor to_vertex(const Tensor& in, const Tensor& inv, at::ScalarType out_type) {
  const int64_t batch = in.size(0), n_vert = in.size(1), n_chan = in.size(2);
  const at::ScalarType type = in.scalar_type();
  TORCH_CHECK(out_type == type || at::toOpMathType(out_type) == type, "tree scan (CUDA): cannot convert ", type,
              " to ", out_type, " in the layout change");
  Tensor out = at::empty({batch, n_chan, n_vert}, in.options().dtype(out_type));
  if (in.numel() == 0) return out;
  int64_t v_tiles;
  const dim3 grid = transpose_grid(batch, n_chan, n_vert, &v_tiles);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, out_type, "grootvl_to_vertex", [&] {
    using wide_t = at::opmath_type<scalar_t>;
    if (out_type == type) {
      GROOTVL_LAYOUT_LAUNCH(to_vertex_kernel, scalar_t, scalar_t);
    } else {
      GROOTVL_LAYOUT_LAUNCH(to_vertex_kernel, wide_t, scalar_t);
    }
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

#undef GROOTVL_LAYOUT_LAUNCH

}  // namespace cuda_detail
}  // namespace grootvl
