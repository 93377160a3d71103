// Edge weights of the 4-connected pixel grid on the CPU: w = exp(-cos(f_p, f_q)) for every grid
// edge (reference-grootvl.md 1.2; oracle: reference.py `grid_cosine_weights`, the PyTorch
// formula). One pass over the features, channels innermost: each pixel's inverse norm once, then
// one dot product per edge. PyTorch's formula normalises every pixel and multiplies shifted
// copies: several passes and temporaries of the whole feature map per block.
#include "tree_scan.h"
#include "vec_math.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>

namespace grootvl {
namespace {

inline float dot(const float* __restrict p, const float* __restrict q, int64_t d) {
  float s = 0.f;
  GROOTVL_SIMD_SUM_S
  for (int64_t k = 0; k < d; ++k) s += p[k] * q[k];
  return s;
}

}  // namespace

Tensor grid_cosine_weights_cpu(const Tensor& feature) {
  // (B, D, H, W) with the D values of a pixel contiguous (a no-op for GrootV's conv outputs)
  const Tensor f = feature.contiguous(at::MemoryFormat::ChannelsLast);
  const int64_t batch = f.size(0), d = f.size(1), h = f.size(2), w = f.size(3);
  const int64_t n_vert = (h - 1) * w, n_edges = n_vert + h * (w - 1);
  Tensor out = at::empty({batch, n_edges}, f.options().memory_format(at::MemoryFormat::Contiguous));
  Tensor inv = at::empty({batch, h * w}, out.options());
  if (batch == 0 || n_edges == 0) return out;
  const float* fp = f.data_ptr<float>();
  float* ip = inv.data_ptr<float>();
  float* op = out.data_ptr<float>();
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, d * w));
  // 1 / max(|f_p|, eps), eps 1e-8 as F.cosine_similarity (each norm clamped on its own)
  at::parallel_for(0, batch * h, grain, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row)
      for (int64_t c = 0; c < w; ++c) {
        const float* p = fp + (row * w + c) * d;
        ip[row * w + c] = 1.f / std::max(std::sqrt(dot(p, p, d)), 1e-8f);
      }
  });
  at::parallel_for(0, batch * h, grain, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t b = row / h, r = row % h;
      const float* fb = fp + b * h * w * d;
      const float* ib = ip + b * h * w;
      float* ob = op + b * n_edges;
      for (int64_t c = 0; c < w; ++c) {
        const int64_t v = r * w + c;
        if (r + 1 < h) ob[v] = std::exp(-dot(fb + v * d, fb + (v + w) * d, d) * ib[v] * ib[v + w]);
        if (c + 1 < w) ob[n_vert + r * (w - 1) + c] = std::exp(-dot(fb + v * d, fb + (v + 1) * d, d) * ib[v] * ib[v + 1]);
      }
    }
  });
  return out;
}

}  // namespace grootvl
