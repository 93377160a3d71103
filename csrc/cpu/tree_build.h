// Per-image MST and BFS on the CPU, shared by the batched ops (mst.cpp, bfs.cpp) and the fused
// grid tree (grid_tree.cpp). Semantics: reference-grootvl.md 1.3 and 1.5; oracles in
// reference.py (`mst`, `bfs`).
//
// MST: Kruskal. The (float32 weight, edge index) pairs are packed into uint64 keys, the weight's
// bits mapped to an order-preserving uint32 (NaN last, -0 == +0), sorted with a stable LSD radix
// sort on the weight half (so equal weights keep ascending edge index), then scanned with a
// union-find (path halving, union by size). The result is the unique MST under that total order,
// i.e. the same edge set as the published Boruvka. The loop is bounded by E, so it never hangs.
//
// BFS: the adjacency is a CSR built in the order of the tree's edge rows (row (s, t) appends t to
// s's list, then s to t's), so neighbours are visited exactly as the reference visits them. The
// queue is the `order` row itself.
#pragma once

#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

namespace grootvl {
namespace tree_build {

// Order-preserving map float32 -> uint32: negative floats reversed, positives above them;
// -0 and +0 compare equal (as torch.sort does); every NaN maps to the maximum (sorted last).
inline uint32_t sortable_bits(float w) {
  if (w != w) return 0xFFFFFFFFu;
  if (w == 0.0f) w = 0.0f;  // -0 -> +0
  uint32_t bits;
  std::memcpy(&bits, &w, sizeof(bits));
  return (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
}

// Stable LSD radix sort of `keys` by their upper 32 bits (8-bit digits, trivial digits skipped).
inline void radix_sort_upper32(std::vector<uint64_t>& keys, std::vector<uint64_t>& tmp) {
  const size_t n = keys.size();
  if (n == 0) return;
  uint32_t hist[4][256];
  std::memset(hist, 0, sizeof(hist));
  for (size_t i = 0; i < n; ++i) {
    const uint32_t k = static_cast<uint32_t>(keys[i] >> 32);
    ++hist[0][k & 0xFF];
    ++hist[1][(k >> 8) & 0xFF];
    ++hist[2][(k >> 16) & 0xFF];
    ++hist[3][k >> 24];
  }
  uint64_t* src = keys.data();
  uint64_t* dst = tmp.data();
  for (int pass = 0; pass < 4; ++pass) {
    const int shift = 32 + 8 * pass;
    uint32_t* h = hist[pass];
    // a digit that is the same for every key does not change the order: skip the pass
    if (h[(src[0] >> shift) & 0xFF] == n) continue;
    uint32_t offset[256];
    uint32_t sum = 0;
    for (int d = 0; d < 256; ++d) {
      offset[d] = sum;
      sum += h[d];
    }
    for (size_t i = 0; i < n; ++i) dst[offset[(src[i] >> shift) & 0xFF]++] = src[i];
    std::swap(src, dst);
  }
  if (src != keys.data()) std::memcpy(keys.data(), src, n * sizeof(uint64_t));
}

inline int32_t find_root(std::vector<int32_t>& up, int32_t v) {
  while (up[v] != v) {
    up[v] = up[up[v]];  // path halving
    v = up[v];
  }
  return v;
}

// Scratch space of one thread, reused across the images it handles.
struct Scratch {
  std::vector<uint64_t> keys, tmp;
  std::vector<int32_t> up, size;
  std::vector<int64_t> start, cursor, adj, pos;
};

// MST of one graph: `ed` (E, 2) endpoints in [0, V) (checked by the caller), `w` (E,) weights;
// writes the tree's rows (s, t) in Kruskal order to `out` ((V-1, 2)); returns the number of rows
// written (V - 1 when the graph is connected).
template <typename Index>
int64_t mst_one(const Index* ed, const float* w, int64_t n_edges, int64_t n_vert, int32_t* out, Scratch& s) {
  const int64_t n_tree = n_vert - 1;
  s.keys.resize(n_edges);
  s.tmp.resize(n_edges);
  s.up.resize(n_vert);
  s.size.resize(n_vert);
  for (int64_t e = 0; e < n_edges; ++e) s.keys[e] = (uint64_t(sortable_bits(w[e])) << 32) | uint64_t(e);
  radix_sort_upper32(s.keys, s.tmp);
  for (int32_t v = 0; v < n_vert; ++v) {
    s.up[v] = v;
    s.size[v] = 1;
  }
  int64_t count = 0;
  for (int64_t k = 0; k < n_edges && count < n_tree; ++k) {
    const int64_t e = static_cast<int64_t>(s.keys[k] & 0xFFFFFFFFu);
    const int32_t a = static_cast<int32_t>(ed[2 * e]), b = static_cast<int32_t>(ed[2 * e + 1]);
    int32_t ra = find_root(s.up, a), rb = find_root(s.up, b);
    if (ra == rb) continue;
    if (s.size[ra] < s.size[rb]) std::swap(ra, rb);
    s.up[rb] = ra;
    s.size[ra] += s.size[rb];
    out[2 * count] = a;
    out[2 * count + 1] = b;
    ++count;
  }
  return count;
}

// BFS of one tree: `rows` (V-1, 2) endpoints in [0, V) (checked by the caller); writes order,
// parent positions and depths ((V,) each, `dep` zero-initialised by the caller); returns the
// number of vertices reached (V when the rows form a spanning tree).
template <typename Index>
int64_t bfs_one(const Index* rows, int64_t n_vert, int64_t root, int64_t* ord, int64_t* par, int64_t* dep,
                Scratch& s) {
  const int64_t n_rows = n_vert - 1;
  s.start.assign(n_vert + 1, 0);
  s.cursor.resize(n_vert);
  s.adj.resize(2 * n_rows);
  s.pos.assign(n_vert, -1);
  // CSR adjacency, each vertex's neighbours in edge-row order
  for (int64_t k = 0; k < 2 * n_rows; ++k) ++s.start[rows[k] + 1];
  for (int64_t v = 0; v < n_vert; ++v) s.start[v + 1] += s.start[v];
  for (int64_t v = 0; v < n_vert; ++v) s.cursor[v] = s.start[v];
  for (int64_t k = 0; k < n_rows; ++k) {
    const int64_t a = rows[2 * k], b = rows[2 * k + 1];
    s.adj[s.cursor[a]++] = b;
    s.adj[s.cursor[b]++] = a;
  }
  s.pos[root] = 0;
  ord[0] = root;
  par[0] = 0;
  int64_t n = 1;
  for (int64_t head = 0; head < n; ++head) {
    const int64_t cur = ord[head];
    for (int64_t k = s.start[cur]; k < s.start[cur + 1]; ++k) {
      const int64_t nb = s.adj[k];
      if (s.pos[nb] >= 0) continue;
      s.pos[nb] = n;
      ord[n] = nb;
      par[n] = head;
      dep[n] = dep[head] + 1;
      ++n;
    }
  }
  return n;
}

}  // namespace tree_build
}  // namespace grootvl
