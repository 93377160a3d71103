// TreeSSM's depthwise conv and its SiLU for inference on the CPU, in one pass over channels-last
// pixels (reference-grootvl.md 2.2 step 4; oracle: reference.py `depthwise_conv_silu`):
//
//   out[b, y, x, c] = silu(bias[c] + sum_{i, j} in[b, y + i - k/2, x + j - k/2, c] * w[c, i, j])
//
// zero padding, stride 1, odd k. Each output row of each image is one task; the inner loop runs
// over the C contiguous channels of a pixel (vectorised), so every tap is a contiguous load. oneDNN
// runs the conv well, but PyTorch then makes a second pass (and a tensor) for the SiLU.
#include "tree_scan.h"
#include "vec_math.h"

#include <ATen/Parallel.h>

#include <algorithm>

namespace grootvl {
namespace {

inline float silu(float v) { return v / (1.f + vec_math::exp(-v)); }

// Channels [c0, c0 + kBlock) of output pixel (y, x): the accumulator is a fixed-size block the
// compiler keeps in vector registers across the k x k taps (a runtime-length accumulator went
// through memory on every tap).
constexpr int64_t kBlock = 32;

inline void conv_block(const float* __restrict in, const float* __restrict wt, const float* __restrict bias,
                       float* __restrict dst, int64_t h, int64_t w, int64_t c, int64_t k, int64_t y, int64_t x,
                       int64_t c0) {
  const int64_t r = k / 2;
  float acc[kBlock];
  GROOTVL_SIMD_ROW
  for (int64_t q = 0; q < kBlock; ++q) acc[q] = bias != nullptr ? bias[c0 + q] : 0.f;
  for (int64_t i = 0; i < k; ++i) {
    const int64_t yy = y + i - r;
    if (yy < 0 || yy >= h) continue;
    for (int64_t j = 0; j < k; ++j) {
      const int64_t xx = x + j - r;
      if (xx < 0 || xx >= w) continue;
      const float* src = in + (yy * w + xx) * c + c0;
      const float* tap = wt + (i * k + j) * c + c0;
      GROOTVL_SIMD_ROW
      for (int64_t q = 0; q < kBlock; ++q) acc[q] += src[q] * tap[q];
    }
  }
  GROOTVL_SIMD_ROW
  for (int64_t q = 0; q < kBlock; ++q) dst[c0 + q] = silu(acc[q]);
}

// The last c % kBlock channels of pixel (y, x).
inline void conv_tail(const float* __restrict in, const float* __restrict wt, const float* __restrict bias,
                      float* __restrict dst, int64_t h, int64_t w, int64_t c, int64_t k, int64_t y, int64_t x,
                      int64_t c0) {
  const int64_t r = k / 2;
  for (int64_t ch = c0; ch < c; ++ch) {
    float acc = bias != nullptr ? bias[ch] : 0.f;
    for (int64_t i = 0; i < k; ++i) {
      const int64_t yy = y + i - r;
      if (yy < 0 || yy >= h) continue;
      for (int64_t j = 0; j < k; ++j) {
        const int64_t xx = x + j - r;
        if (xx < 0 || xx >= w) continue;
        acc += in[(yy * w + xx) * c + ch] * wt[(i * k + j) * c + ch];
      }
    }
    dst[ch] = silu(acc);
  }
}

// One output row (image b, row y). Compiled for AVX-512, AVX2 and the baseline ISA.
GROOTVL_TARGET_CLONES
void conv_row(const float* __restrict in, const float* __restrict wt, const float* __restrict bias,
              float* __restrict out, int64_t h, int64_t w, int64_t c, int64_t k, int64_t y) {
  const int64_t full = c / kBlock * kBlock;
  for (int64_t x = 0; x < w; ++x) {
    float* dst = out + x * c;
    for (int64_t c0 = 0; c0 < full; c0 += kBlock) conv_block(in, wt, bias, dst, h, w, c, k, y, x, c0);
    if (full < c) conv_tail(in, wt, bias, dst, h, w, c, k, y, x, full);
  }
}

}  // namespace

Tensor depthwise_conv_silu_cpu(const Tensor& input, const Tensor& weight, const c10::optional<Tensor>& bias) {
  // input (B, H, W, C) contiguous; weight (C, 1, k, k); out (B, H, W, C)
  const int64_t batch = input.size(0), h = input.size(1), w = input.size(2), c = input.size(3);
  const int64_t k = weight.size(2);
  Tensor out = at::empty_like(input);
  if (out.numel() == 0) return out;
  // taps channel-innermost: wt[(i k + j) C + c] = weight[c, 0, i, j]
  const Tensor wt = weight.reshape({c, k * k}).t().contiguous();
  const float* inp = input.data_ptr<float>();
  const float* wp = wt.data_ptr<float>();
  const float* bp = bias.has_value() ? bias->data_ptr<float>() : nullptr;
  float* op = out.data_ptr<float>();
  at::parallel_for(0, batch * h, 1, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t b = row / h, y = row % h;
      conv_row(inp + b * h * w * c, wp, bp, op + (b * h + y) * w * c, h, w, c, k, y);
    }
  });
  return out;
}

}  // namespace grootvl
