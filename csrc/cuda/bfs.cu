// Exact breadth-first order of a spanning tree on the GPU, one thread block per tree
// (reference-grootvl.md 1.5 describes the published 64-thread spin-wait version, whose order is
// nondeterministic; this one equals reference.py `bfs` position for position).
//
// Adjacency: every tree row (s, t) gives two entries (s -> t, t -> s). One device sort of the keys
// (batch, vertex, entry index) groups the entries by vertex in edge-row order: the stable
// counting sort the reference's adjacency lists amount to. Per vertex the CSR range is found from
// the run boundaries of the sorted keys.
//
// Level-synchronous expansion: the frontier is the position range [ls, le) of the order itself.
// A candidate (frontier position p, adjacency index k) claims its neighbour with atomicMin of the
// key (p + 1, k); the lowest key wins, which is exactly the candidate a sequential queue would
// reach first (positions in order, then adjacency order). A block-wide prefix sum over the
// frontier's won-child counts then gives every child its position: children appear in the order
// of their parents' positions, then adjacency order. Every barrier is reached by all threads
// (loop bounds are block-uniform). A vertex claimed in an earlier level keeps a smaller key, so
// it is never placed twice; a disconnected tree stops when a level adds nobody (ok = false).
// Rows with an id outside [0, V) give ok = false and all-zero outputs, as on the CPU.
#include "common.cuh"
#include "tree_scan.h"

namespace grootvl {
namespace {

constexpr int kThreads = 128;  // frontiers are narrow; few warps keep the per-level barriers cheap

__global__ void adjacency_keys_kernel(const int64_t* __restrict__ tree, int64_t batch, int64_t n_entries,
                                      int64_t n_vert, int64_t* __restrict__ keys) {
  const int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (idx >= batch * n_entries) return;
  const int64_t b = idx / n_entries, e = idx % n_entries;
  const int64_t v = tree[idx];
  const int64_t bucket = (v >= 0 && v < n_vert) ? v : n_vert;
  keys[idx] = (b * (n_vert + 1) + bucket) * n_entries + e;
}

inline int64_t scratch_bytes(int64_t n_vert, int64_t n_entries) {
  // claim (u64), start, end, order (int) per vertex; neighbour (int) per entry; 8-byte aligned
  return ((n_vert * (8 + 3 * 4) + n_entries * 4) + 7) / 8 * 8;
}

__global__ void bfs_kernel(const int64_t* __restrict__ tree, const int64_t* __restrict__ sorted_keys,
                           int64_t n_entries, int n_vert, int root, int64_t* __restrict__ order,
                           int64_t* __restrict__ parent, int64_t* __restrict__ depth, bool* __restrict__ ok,
                           unsigned char* g_scratch, int64_t block_bytes, bool in_shared) {
  extern __shared__ unsigned long long smem[];
  __shared__ int s_scan[33];
  const int64_t b = blockIdx.x;
  unsigned char* base =
      in_shared ? reinterpret_cast<unsigned char*>(smem) : g_scratch + b * block_bytes;
  unsigned long long* claim = reinterpret_cast<unsigned long long*>(base);
  int* start = reinterpret_cast<int*>(claim + n_vert);
  int* end = start + n_vert;
  int* ord = end + n_vert;
  int* nbr = ord + n_vert;

  const int64_t* tb = tree + b * n_entries;
  int64_t* ob = order + b * n_vert;
  int64_t* pb = parent + b * n_vert;
  int64_t* db = depth + b * n_vert;

  int bad = 0;
  for (int64_t k = threadIdx.x; k < n_entries; k += blockDim.x) bad |= (tb[k] < 0) | (tb[k] >= n_vert);
  if (__syncthreads_or(bad)) {  // block-uniform
    for (int v = threadIdx.x; v < n_vert; v += blockDim.x) ob[v] = pb[v] = db[v] = 0;
    if (threadIdx.x == 0) ok[b] = false;
    return;
  }

  for (int v = threadIdx.x; v < n_vert; v += blockDim.x) {
    start[v] = 0;
    end[v] = 0;
    claim[v] = ~0ull;
  }
  __syncthreads();
  const int64_t* sb = sorted_keys + b * n_entries;
  const int64_t key_base = b * (n_vert + 1) * n_entries;
  for (int64_t i = threadIdx.x; i < n_entries; i += blockDim.x) {
    const int64_t local = sb[i] - key_base;
    const int64_t vtx = local / n_entries;
    const int64_t e = local % n_entries;
    nbr[i] = static_cast<int>(tb[e ^ 1]);  // the other endpoint of row e / 2
    if (i == 0 || (sb[i - 1] - key_base) / n_entries != vtx) start[vtx] = static_cast<int>(i);
    if (i == n_entries - 1 || (sb[i + 1] - key_base) / n_entries != vtx) end[vtx] = static_cast<int>(i + 1);
  }
  if (threadIdx.x == 0) {
    claim[root] = 0;  // below every candidate key, so the root is never claimed
    ord[0] = root;
    ob[0] = root;
    pb[0] = 0;
    db[0] = 0;
  }
  __syncthreads();

  int ls = 0, le = 1;
  int64_t level = 0;
  while (ls < le) {
    // 1. claims
    for (int p = ls + threadIdx.x; p < le; p += blockDim.x) {
      const int v = ord[p];
      const unsigned long long hi = static_cast<unsigned long long>(p + 1) << 32;
      for (int k = start[v]; k < end[v]; ++k) atomicMin(&claim[nbr[k]], hi | static_cast<unsigned>(k));
    }
    __syncthreads();
    // 2. placement, one block-wide tile of frontier positions at a time
    int out = le;
    for (int tile = ls; tile < le; tile += blockDim.x) {
      const int p = tile + threadIdx.x;
      int won = 0;
      int v = 0;
      const unsigned long long hi = static_cast<unsigned long long>(p + 1) << 32;
      if (p < le) {
        v = ord[p];
        for (int k = start[v]; k < end[v]; ++k) won += claim[nbr[k]] == (hi | static_cast<unsigned>(k));
      }
      int total;
      const int offset = cuda_detail::block_exclusive_sum(won, s_scan, &total);
      if (won) {
        int j = out + offset;
        for (int k = start[v]; k < end[v]; ++k) {
          const int nb = nbr[k];
          if (claim[nb] != (hi | static_cast<unsigned>(k))) continue;
          ord[j] = nb;
          ob[j] = nb;
          pb[j] = p;
          db[j] = level + 1;
          ++j;
        }
      }
      out += total;
    }
    __syncthreads();  // the new frontier's `ord` entries are visible to every thread
    ls = le;
    le = out;
    ++level;
  }
  if (threadIdx.x == 0) ok[b] = (le == n_vert);
  for (int p = le + threadIdx.x; p < n_vert; p += blockDim.x) ob[p] = pb[p] = db[p] = 0;
}

}  // namespace

std::tuple<Tensor, Tensor, Tensor, Tensor> bfs_cuda(const Tensor& tree_in, int64_t root) {
  const c10::cuda::CUDAGuard guard(tree_in.device());
  const Tensor tree = tree_in.contiguous();
  const int64_t batch = tree.size(0);
  const int64_t n_rows = tree.size(1);
  const int64_t n_vert = n_rows + 1;
  TORCH_CHECK(n_vert < (int64_t{1} << 30), "bfs: at most 2^30 vertices on CUDA, got ", n_vert);
  TORCH_CHECK(root >= 0 && root < n_vert, "bfs: root must lie in [0, ", n_vert, "), got ", root);
  const auto opts = tree.options().dtype(at::kLong);
  if (n_rows == 0 || batch == 0) {  // a single vertex: the root alone
    return {at::full({batch, n_vert}, root, opts), at::zeros({batch, n_vert}, opts),
            at::zeros({batch, n_vert}, opts), at::ones({batch}, opts.dtype(at::kBool))};
  }
  Tensor order = at::empty({batch, n_vert}, opts);
  Tensor parent = at::empty({batch, n_vert}, opts);
  Tensor depth = at::empty({batch, n_vert}, opts);
  Tensor ok = at::empty({batch}, opts.dtype(at::kBool));
  cudaStream_t stream = at::cuda::getCurrentCUDAStream();

  const int64_t n_entries = 2 * n_rows;
  Tensor keys = at::empty({batch * n_entries}, opts);
  constexpr int kKeyThreads = 256;
  adjacency_keys_kernel<<<static_cast<unsigned>(cuda_detail::ceil_div(batch * n_entries, kKeyThreads)),
                          kKeyThreads, 0, stream>>>(tree.data_ptr<int64_t>(), batch, n_entries, n_vert,
                                                    keys.data_ptr<int64_t>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  const Tensor sorted = std::get<0>(keys.sort(/*dim=*/0));

  const int64_t bytes = scratch_bytes(n_vert, n_entries);
  const bool in_shared = bytes + 1024 <= cuda_detail::max_dynamic_smem();  // + static shared
  Tensor scratch;
  if (in_shared) {
    cuda_detail::allow_dynamic_smem(bfs_kernel, bytes);
  } else {
    scratch = at::empty({batch * bytes}, tree.options().dtype(at::kByte));
  }
  bfs_kernel<<<static_cast<unsigned>(batch), kThreads, in_shared ? bytes : 0, stream>>>(
      tree.data_ptr<int64_t>(), sorted.data_ptr<int64_t>(), n_entries, static_cast<int>(n_vert),
      static_cast<int>(root), order.data_ptr<int64_t>(), parent.data_ptr<int64_t>(), depth.data_ptr<int64_t>(),
      ok.data_ptr<bool>(), in_shared ? nullptr : scratch.data_ptr<unsigned char>(), bytes, in_shared);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {order, parent, depth, ok};
}

}  // namespace grootvl
