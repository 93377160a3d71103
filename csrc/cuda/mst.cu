// Minimum spanning tree on the GPU: Boruvka, one thread block per graph (reference-grootvl.md 1.3,
// which runs this on the host with a device->host->device round trip; here nothing leaves the GPU).
//
// Every edge gets the 64-bit key (float32 order key of its weight, edge index): a total order
// with ties to the lower edge index and NaN last, exactly the order of the reference's stable
// sort (reference.py `mst`). Under a total order the MST is unique and Boruvka finds it:
//   round: each component takes its minimum outgoing edge (atomicMin on the key); a component
//   hooks onto the component at the other end; two components that chose each other (they chose
//   the same edge, the only possible cycle under a total order) keep the lower id as root; the
//   hooked edges join the tree; labels are flattened by pointer jumping.
// A round without a hook ends the loop, so a disconnected graph terminates (ok = false) after at
// most ceil(log2 V) + 1 productive rounds. Component labels and keys live in shared memory when
// they fit, else in global scratch.
//
// The reference returns the tree rows in Kruskal order (sorted by the key); the selected edges
// are put in that order by one device sort of their keys, so the rows are identical to it.
#include "common.cuh"
#include "tree_scan.h"

#include <limits>

namespace grootvl {
namespace {

using cuda_detail::float_order_key;

constexpr int kThreads = 512;
constexpr int64_t kNotSelected = std::numeric_limits<int64_t>::max();
constexpr unsigned long long kNoEdge = ~0ull;

// keys[b, e] = (order key of w_e) << 31 | e for the tree edges, kNotSelected for the others.
__global__ void boruvka_kernel(const int64_t* __restrict__ edges, const float* __restrict__ weights,
                               int64_t n_edges, int n_vert, int64_t* __restrict__ keys,
                               bool* __restrict__ ok, unsigned long long* g_best, int* g_label,
                               bool in_shared) {
  extern __shared__ unsigned long long smem[];
  __shared__ int s_count;
  const int64_t b = blockIdx.x;
  unsigned long long* best;
  int* comp;
  int* next;
  if (in_shared) {
    best = smem;
    comp = reinterpret_cast<int*>(smem + n_vert);
  } else {
    best = g_best + b * n_vert;
    comp = g_label + b * 2 * static_cast<int64_t>(n_vert);
  }
  next = comp + n_vert;
  const int64_t* eb = edges + b * n_edges * 2;
  const float* wb = weights + b * n_edges;
  int64_t* kb = keys + b * n_edges;

  for (int v = threadIdx.x; v < n_vert; v += blockDim.x) comp[v] = v;
  for (int64_t e = threadIdx.x; e < n_edges; e += blockDim.x) kb[e] = kNotSelected;
  __syncthreads();

  while (true) {
    // 1. minimum outgoing edge of every component
    for (int v = threadIdx.x; v < n_vert; v += blockDim.x) best[v] = kNoEdge;
    if (threadIdx.x == 0) s_count = 0;
    __syncthreads();
    for (int64_t e = threadIdx.x; e < n_edges; e += blockDim.x) {
      const int64_t s = eb[2 * e], t = eb[2 * e + 1];
      if (s < 0 || s >= n_vert || t < 0 || t >= n_vert) continue;  // not an edge of this graph
      const int cs = comp[s], ct = comp[t];
      if (cs == ct) continue;
      const unsigned long long key =
          (static_cast<unsigned long long>(float_order_key(wb[e])) << 32) | static_cast<uint64_t>(e);
      atomicMin(&best[cs], key);
      atomicMin(&best[ct], key);
    }
    __syncthreads();
    // 2. the component each representative hooks onto (itself when it has no outgoing edge)
    for (int v = threadIdx.x; v < n_vert; v += blockDim.x) {
      if (comp[v] != v) continue;
      int to = v;
      if (best[v] != kNoEdge) {
        const int64_t e = static_cast<int64_t>(best[v] & 0xFFFFFFFFull);
        const int cs = comp[eb[2 * e]], ct = comp[eb[2 * e + 1]];
        to = (cs == v) ? ct : cs;
      }
      next[v] = to;
    }
    __syncthreads();
    // 3. break the 2-cycles, add the hooked edges; best[v] becomes v's new pointer
    int hooks = 0;
    for (int v = threadIdx.x; v < n_vert; v += blockDim.x) {
      if (comp[v] != v) continue;
      const int to = next[v];
      if (to == v) {
        best[v] = static_cast<unsigned long long>(v);
        continue;
      }
      const int64_t e = static_cast<int64_t>(best[v] & 0xFFFFFFFFull);
      if (next[to] == v && v < to) {  // mutual choice of the same edge: v stays the root
        best[v] = static_cast<unsigned long long>(v);
        continue;
      }
      best[v] = static_cast<unsigned long long>(to);
      kb[e] = (static_cast<int64_t>(float_order_key(wb[e])) << 31) | e;
      ++hooks;
    }
    if (hooks) atomicAdd(&s_count, hooks);
    __syncthreads();
    const int added = s_count;
    if (added == 0) break;  // uniform: read after the barrier, reset only after the next one
    // 4. pointer graph over all vertices, then pointer jumping until every label is a root
    for (int v = threadIdx.x; v < n_vert; v += blockDim.x) {
      const int c = comp[v];
      next[v] = (c == v) ? static_cast<int>(best[v]) : c;
    }
    __syncthreads();
    int* src = next;
    int* dst = comp;
    while (true) {
      int changed = 0;
      for (int v = threadIdx.x; v < n_vert; v += blockDim.x) {
        const int p = src[v];
        const int pp = src[p];
        dst[v] = pp;
        changed |= (pp != p);
      }
      const int any = __syncthreads_or(changed);
      int* tmp = src;
      src = dst;
      dst = tmp;
      // without a change dst == src element-wise, so both buffers hold the final labels
      if (!any) break;
    }
    // comp must hold the labels: if the last write went to `next`, both arrays are equal anyway
  }
  // number of components left
  int roots = 0;
  for (int v = threadIdx.x; v < n_vert; v += blockDim.x) roots += (comp[v] == v);
  __syncthreads();
  if (threadIdx.x == 0) s_count = 0;
  __syncthreads();
  if (roots) atomicAdd(&s_count, roots);
  __syncthreads();
  if (threadIdx.x == 0) ok[b] = (s_count == 1);
}

// tree[b, j] = edges[b, e_j] for the j-th smallest selected key, -1 where no edge is left.
__global__ void tree_rows_kernel(const int64_t* __restrict__ edges, const int64_t* __restrict__ sorted_keys,
                                 int64_t n_edges, int64_t n_rows, int64_t batch, int32_t* __restrict__ tree) {
  const int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (idx >= batch * n_rows) return;
  const int64_t b = idx / n_rows, j = idx % n_rows;
  int32_t s = -1, t = -1;
  if (j < n_edges) {
    const int64_t key = sorted_keys[b * n_edges + j];
    if (key != kNotSelected) {
      const int64_t e = key & 0x7FFFFFFFll;
      s = static_cast<int32_t>(edges[(b * n_edges + e) * 2]);
      t = static_cast<int32_t>(edges[(b * n_edges + e) * 2 + 1]);
    }
  }
  tree[idx * 2] = s;
  tree[idx * 2 + 1] = t;
}

}  // namespace

Pair mst_cuda(const Tensor& edges_in, const Tensor& weights_in, int64_t num_vertices) {
  const c10::cuda::CUDAGuard guard(edges_in.device());
  const Tensor edges = edges_in.contiguous();
  const Tensor weights = weights_in.contiguous();
  const int64_t batch = edges.size(0);
  const int64_t n_edges = edges.size(1);
  TORCH_CHECK(num_vertices >= 1 && num_vertices < (int64_t{1} << 30),
              "mst: num_vertices must lie in [1, 2^30) on CUDA, got ", num_vertices);
  TORCH_CHECK(n_edges < (int64_t{1} << 31), "mst: at most 2^31 - 1 edges per graph on CUDA, got ", n_edges);
  const int n_vert = static_cast<int>(num_vertices);
  const int64_t n_rows = num_vertices - 1;
  const auto opts = edges.options();
  Tensor tree = at::empty({batch, n_rows, 2}, opts.dtype(at::kInt));
  Tensor ok = at::empty({batch}, opts.dtype(at::kBool));
  if (batch == 0) return {tree, ok};

  cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  Tensor keys = at::empty({batch, n_edges}, opts.dtype(at::kLong));
  const int64_t smem = static_cast<int64_t>(n_vert) * (sizeof(unsigned long long) + 2 * sizeof(int));
  const bool in_shared = smem + 1024 <= cuda_detail::max_dynamic_smem();  // + static shared
  Tensor g_best, g_label;
  if (!in_shared) {
    g_best = at::empty({batch, n_vert}, opts.dtype(at::kLong));
    g_label = at::empty({batch, 2 * static_cast<int64_t>(n_vert)}, opts.dtype(at::kInt));
  } else {
    cuda_detail::allow_dynamic_smem(boruvka_kernel, smem);
  }
  boruvka_kernel<<<static_cast<unsigned>(batch), kThreads, in_shared ? smem : 0, stream>>>(
      edges.data_ptr<int64_t>(), weights.data_ptr<float>(), n_edges, n_vert, keys.data_ptr<int64_t>(),
      ok.data_ptr<bool>(),
      in_shared ? nullptr : reinterpret_cast<unsigned long long*>(g_best.data_ptr<int64_t>()),
      in_shared ? nullptr : g_label.data_ptr<int>(), in_shared);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  if (n_rows == 0) return {tree, ok};

  // Kruskal row order: sort the keys (selected edges first, ascending (weight, index)).
  const Tensor sorted = n_edges > 0 ? std::get<0>(keys.sort(/*dim=*/1)) : keys;
  const int64_t total = batch * n_rows;
  constexpr int kRowThreads = 256;
  tree_rows_kernel<<<static_cast<unsigned>(cuda_detail::ceil_div(total, kRowThreads)), kRowThreads, 0,
                     stream>>>(edges.data_ptr<int64_t>(), sorted.data_ptr<int64_t>(), n_edges, n_rows, batch,
                               tree.data_ptr<int32_t>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {tree, ok};
}

}  // namespace grootvl
