// exp, log1p and softplus written so that GCC vectorises them, inlined, inside `omp simd` loops:
// branch-free float/int arithmetic only (Cephes' single-precision polynomials, about 1-2 ulp on
// their range; the libm calls these replace stay scalar without -ffast-math). Needs
// -fno-trapping-math (grootvl_core/ops/build.py). Used by the fused elementwise
// kernels (csrc/cpu/ssm_discretize.cpp); tests compare those with PyTorch's own functions.
#pragma once

#include <cstdint>
#include <cstring>

// Loop pragmas shared by the fused CPU kernels: `omp simd` asks for a vectorised loop (GCC does not
// vectorise these on its own at -O3 without -march flags); the _S / _Q forms reduce into `s` / `q`.
#if defined(_OPENMP)
#define GROOTVL_SIMD_ROW _Pragma("omp simd")
#define GROOTVL_SIMD_SUM_S _Pragma("omp simd reduction(+ : s)")
#define GROOTVL_SIMD_SUM_Q _Pragma("omp simd reduction(+ : q)")
#else
#define GROOTVL_SIMD_ROW
#define GROOTVL_SIMD_SUM_S
#define GROOTVL_SIMD_SUM_Q
#endif

// Multiversioning for the compute-bound loops that call these: GCC compiles the marked function
// once per listed ISA and an ifunc picks the widest the CPU has when the library loads (x86-64
// Linux; elsewhere one baseline build). The functions below are inlined into each version.
#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11
#define GROOTVL_TARGET_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define GROOTVL_TARGET_CLONES
#endif

namespace grootvl {
namespace vec_math {

inline float bits_to_float(int32_t i) {
  float f;
  std::memcpy(&f, &i, sizeof f);
  return f;
}

inline int32_t float_to_bits(float f) {
  int32_t i;
  std::memcpy(&i, &f, sizeof i);
  return i;
}

// e^x: 0 below -87.34 (where float32 turns denormal), +inf above 88.72, NaN stays NaN.
inline float exp(float x) {
  const float xc = x < -87.33654f ? -87.33654f : (x > 88.72283f ? 88.72283f : x);
  // n = round(x / ln 2) by the 1.5 * 2^23 trick (exact for |n| < 2^22; no SSE4.1 round needed)
  const float n = (xc * 1.44269504088896341f + 12582912.f) - 12582912.f;
  const float r = (xc - n * 0.693359375f) - n * -2.12194440e-4f;  // ln 2 split in two for accuracy
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  // 2^n as two normal factors: n reaches 128 near the top of the range and -126 at the bottom
  const int32_t ni = static_cast<int32_t>(n), half = ni >> 1;
  const float y = (p * r * r + r + 1.f) * bits_to_float((half + 127) << 23) *
                  bits_to_float((ni - half + 127) << 23);
  const float big = x > 88.72283f ? __builtin_huge_valf() : y;
  const float out = x < -87.33654f ? 0.f : big;
  return x != x ? x : out;
}

// log(x) for normal x > 0 (the callers below only pass values in [1, 2]).
inline float log_positive(float x) {
  const int32_t bits = float_to_bits(x);
  float e = static_cast<float>(((bits >> 23) & 0xff) - 126);
  float m = bits_to_float((bits & 0x007fffff) | 0x3f000000);  // mantissa in [0.5, 1)
  // NOTE: every value is computed before it is selected, here and below: with GCC's default
  // -ftrapping-math a floating-point operation inside one arm of `?:` is not speculated, and the
  // loop calling these stays scalar.
  const bool small = m < 0.707106781186547524f;
  const float e_small = e - 1.f, f_small = m + m - 1.f, f_large = m - 1.f;
  e = small ? e_small : e;
  const float f = small ? f_small : f_large;  // in [sqrt(.5) - 1, sqrt(2) - 1)
  const float z = f * f;
  float p = 7.0376836292e-2f;
  p = p * f - 1.1514610310e-1f;
  p = p * f + 1.1676998740e-1f;
  p = p * f - 1.2420140846e-1f;
  p = p * f + 1.4249322787e-1f;
  p = p * f - 1.6668057665e-1f;
  p = p * f + 2.0000714765e-1f;
  p = p * f - 2.4999993993e-1f;
  p = p * f + 3.3333331174e-1f;
  float y = p * f * z;
  y += e * -2.12194440e-4f;
  y -= 0.5f * z;
  return f + y + e * 0.693359375f;
}

// log(1 + t) for t in [0, 1], accurate for tiny t too (Goldberg's correction: the rounding of
// 1 + t is undone by t / ((1 + t) - 1)).
inline float log1p_unit(float t) {
  const float u = 1.f + t;
  const float d = u - 1.f;
  const bool exact = d == 0.f;
  const float corrected = log_positive(u) * (t / (exact ? 1.f : d));
  return exact ? t : corrected;
}

// PyTorch's softplus (beta 1, threshold 20): x above 20, else log(1 + e^x), computed as
// max(x, 0) + log1p(e^-|x|) (no overflow, full accuracy for very negative x). NaN stays NaN.
inline float softplus(float x) {
  const float neg = -x;
  const float ax = x < 0.f ? neg : x;
  const float s = (x > 0.f ? x : 0.f) + log1p_unit(exp(-ax));
  const float out = x > 20.f ? x : s;
  return x != x ? x : out;
}

}  // namespace vec_math
}  // namespace grootvl
