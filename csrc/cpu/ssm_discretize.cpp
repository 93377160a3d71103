// The discretisation step of GrootV's TreeSSM for inference on the CPU, fused into one pass over
// the pixels (reference-grootvl.md 2.2 steps 7-9; oracle: reference.py `ssm_discretize`):
//
//   delta = softplus(dt + bias);  abar = exp(delta * a);  xin = delta * b * u
//
// PyTorch runs this as six passes over (B, L, D) tensors with a temporary per step (add, softplus,
// mul, exp, mul, mul); here each pixel's row of D channels is read once and both outputs are
// written once. exp and softplus come from vec_math.h so that the row loop vectorises.
#include "tree_scan.h"
#include "vec_math.h"

#include <ATen/Parallel.h>

namespace grootvl {
namespace {

// One contiguous range of rows. Compiled for AVX-512, AVX2 and the baseline ISA (GCC picks one at
// load time): the row loop is compute bound (two exp and a log per element), so the vector width
// matters here, unlike in the memory-bound kernels.
GROOTVL_TARGET_CLONES
void discretize_rows(int64_t begin, int64_t end, int64_t n, int64_t d, const float* __restrict dtp,
                     const float* __restrict biasp, const float* __restrict ap, const float* __restrict bp,
                     int64_t b_b, int64_t b_l, const float* __restrict up, float* __restrict abarp,
                     float* __restrict xinp) {
  for (int64_t r = begin; r < end; ++r) {
    const int64_t bi = r / n, l = r % n;
    const float bv = bp[bi * b_b + l * b_l];
    const float* dtr = dtp + r * d;
    const float* ur = up + r * d;
    float* ar = abarp + r * d;
    float* xr = xinp + r * d;
    GROOTVL_SIMD_ROW
    for (int64_t k = 0; k < d; ++k) {
      const float delta = vec_math::softplus(dtr[k] + biasp[k]);
      ar[k] = vec_math::exp(delta * ap[k]);
      xr[k] = delta * bv * ur[k];
    }
  }
}

}  // namespace

Pair ssm_discretize_cpu(const Tensor& dt, const Tensor& bias, const Tensor& a, const Tensor& b, const Tensor& u) {
  const int64_t batch = dt.size(0), n = dt.size(1), d = dt.size(2);
  Tensor abar = at::empty({batch, n, d}, dt.options());
  Tensor xin = at::empty({batch, n, d}, dt.options());
  if (abar.numel() == 0) return {abar, xin};
  const float* dtp = dt.data_ptr<float>();
  const float* biasp = bias.data_ptr<float>();
  const float* ap = a.data_ptr<float>();
  const float* bp = b.data_ptr<float>();
  const float* up = u.data_ptr<float>();
  float* abarp = abar.data_ptr<float>();
  float* xinp = xin.data_ptr<float>();
  const int64_t b_b = b.stride(0), b_l = b.stride(1);
  const int64_t grain = std::max<int64_t>(1, 16384 / d);
  at::parallel_for(0, batch * n, grain, [&](int64_t begin, int64_t end) {
    discretize_rows(begin, end, n, d, dtp, biasp, ap, bp, b_b, b_l, up, abarp, xinp);
  });
  return {abar, xin};
}

}  // namespace grootvl
