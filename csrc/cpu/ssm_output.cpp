// The end of GrootV's TreeSSM for inference on the CPU, fused into one pass over the pixels
// (reference-grootvl.md 2.2 steps 13-16; oracle: reference.py `ssm_output`):
//
//   out = out_norm(h_norm(h) * c + u * Ds) * g,  g = silu(z) or z    (each norm a LayerNorm over D)
//
// PyTorch runs this as six or seven passes over (B, L, D) tensors with a temporary per step; here
// each pixel's row of D channels is read once and written once.
#include "tree_scan.h"
#include "vec_math.h"

#include <ATen/Parallel.h>

#include <cmath>
#include <vector>

namespace grootvl {
namespace {

// mean and 1 / sqrt(biased variance + eps) of one row, two passes (as stable as PyTorch's)
inline void row_stats(const float* __restrict x, int64_t d, float eps, float& mean, float& rstd) {
  float s = 0.f;
  GROOTVL_SIMD_SUM_S
  for (int64_t k = 0; k < d; ++k) s += x[k];
  mean = s / static_cast<float>(d);
  float q = 0.f;
  GROOTVL_SIMD_SUM_Q
  for (int64_t k = 0; k < d; ++k) {
    const float t = x[k] - mean;
    q += t * t;
  }
  rstd = 1.f / std::sqrt(q / static_cast<float>(d) + eps);
}

// Rows [begin, end). Multiversioned (vec_math.h): the silu gate's exp makes the last loop compute
// bound.
GROOTVL_TARGET_CLONES
void output_rows(int64_t begin, int64_t end, int64_t n, int64_t d, const float* __restrict hp,
                 const float* __restrict up, const float* __restrict cp, int64_t c_b, int64_t c_l,
                 const float* __restrict dsp, const float* __restrict hw, const float* __restrict hb, float he,
                 const float* __restrict ow, const float* __restrict ob, float oe, const float* __restrict zp,
                 int64_t z_b, int64_t z_l, bool silu_gate, float* __restrict op, float* __restrict y) {
  for (int64_t r = begin; r < end; ++r) {
    const int64_t b = r / n, l = r % n;
    const float* hr = hp + r * d;
    const float* ur = up + r * d;
    const float* zr = zp + b * z_b + l * z_l;  // z's rows may be strided (a chunk of in_proj's output)
    float* orow = op + r * d;
    const float cv = cp[b * c_b + l * c_l];
    if (hw != nullptr) {
      float mean, rstd;
      row_stats(hr, d, he, mean, rstd);
      GROOTVL_SIMD_ROW
      for (int64_t k = 0; k < d; ++k) y[k] = ((hr[k] - mean) * rstd * hw[k] + hb[k]) * cv + ur[k] * dsp[k];
    } else {
      GROOTVL_SIMD_ROW
      for (int64_t k = 0; k < d; ++k) y[k] = hr[k] * cv + ur[k] * dsp[k];
    }
    float mean, rstd;
    row_stats(y, d, oe, mean, rstd);
    if (silu_gate) {
      GROOTVL_SIMD_ROW
      for (int64_t k = 0; k < d; ++k) {
        const float g = zr[k] / (1.f + vec_math::exp(-zr[k]));
        orow[k] = ((y[k] - mean) * rstd * ow[k] + ob[k]) * g;
      }
    } else {
      GROOTVL_SIMD_ROW
      for (int64_t k = 0; k < d; ++k) orow[k] = ((y[k] - mean) * rstd * ow[k] + ob[k]) * zr[k];
    }
  }
}

}  // namespace

Tensor ssm_output_cpu(const Tensor& h, const Tensor& u, const Tensor& c, const Tensor& ds,
                      const c10::optional<Tensor>& h_weight, const c10::optional<Tensor>& h_bias, double h_eps,
                      const Tensor& o_weight, const Tensor& o_bias, double o_eps, const Tensor& z, bool silu_gate) {
  const int64_t batch = h.size(0), n = h.size(1), d = h.size(2);
  Tensor out = at::empty({batch, n, d}, h.options());
  if (out.numel() == 0) return out;
  const float* hp = h.data_ptr<float>();
  const float* up = u.data_ptr<float>();
  const float* cp = c.data_ptr<float>();
  const float* dsp = ds.data_ptr<float>();
  const float* hw = h_weight.has_value() ? h_weight->data_ptr<float>() : nullptr;
  const float* hb = h_bias.has_value() ? h_bias->data_ptr<float>() : nullptr;
  const float* ow = o_weight.data_ptr<float>();
  const float* ob = o_bias.data_ptr<float>();
  const float* zp = z.data_ptr<float>();
  float* op = out.data_ptr<float>();
  const int64_t c_b = c.stride(0), c_l = c.stride(1);
  const float he = static_cast<float>(h_eps), oe = static_cast<float>(o_eps);
  const int64_t grain = std::max<int64_t>(1, 16384 / d);
  at::parallel_for(0, batch * n, grain, [&](int64_t begin, int64_t end) {
    std::vector<float> row(d);
    output_rows(begin, end, n, d, hp, up, cp, c_b, c_l, dsp, hw, hb, he, ow, ob, oe, zp, z.stride(0), z.stride(1),
                silu_gate, op, row.data());
  });
  return out;
}

}  // namespace grootvl
