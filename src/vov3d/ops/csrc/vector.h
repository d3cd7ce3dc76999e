/* Vector types and activations shared by vov3d's CPU kernels (inference_kernels.c, training_kernels.c). */
#ifndef VOV3D_VECTOR_H
#define VOV3D_VECTOR_H
#include <stdint.h>
#include <string.h>

/* 16 and 8 floats as GCC/Clang vector extensions: one AVX-512 register (or two AVX2 halves, or four SSE
 * quarters: the code is portable, -march=native picks the widest). Unaligned loads and stores. */
typedef float vf16 __attribute__((vector_size(64), aligned(4)));
typedef uint32_t vu16 __attribute__((vector_size(64), aligned(4)));
typedef float vf8 __attribute__((vector_size(32), aligned(4)));

static inline vf16 select16(vu16 mask, vf16 a, vf16 b) { return (vf16)((mask & (vu16)a) | (~mask & (vu16)b)); }

#ifdef __AVX512F__
#include <immintrin.h>
/* t - floor(t), in [0, 1): one `reduce` with AVX512DQ. */
static inline __m512 fraction16(__m512 t) {
#ifdef __AVX512DQ__
    return _mm512_reduce_ps(t, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
#else
    return _mm512_sub_ps(t, _mm512_roundscale_ps(t, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC));
#endif
}
/* The logistic sigmoid of 16 floats with AVX-512, relative error about 3e-7 (plus |v| * 6e-8 from rounding
 * t below): exp(-v) = 2^t, t = -v log2(e) (clamped to 126: 2^t stays finite), as 2^floor(t) (scalef floors
 * its exponent) times a degree-5 fit of 2^f on [0, 1), f = t - floor(t) (1.6e-7); 1 / (1 + exp(-v)) by the
 * 14-bit reciprocal estimate and one Newton step: 13 instructions (19 with the usual Cody-Waite reduction). */
static inline vf16 sigmoid16(vf16 v) {
    const __m512 t = _mm512_min_ps(_mm512_mul_ps((__m512)v, _mm512_set1_ps(-1.44269504f)), _mm512_set1_ps(126.0f));
    const __m512 f = fraction16(t);
    __m512 p = _mm512_fmadd_ps(f, _mm512_set1_ps(1.877576695e-3f), _mm512_set1_ps(8.989340626e-3f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.582631752e-2f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.401536107e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.931530833e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.999999404e-1f));
    const __m512 d = _mm512_add_ps(_mm512_scalef_ps(p, t), _mm512_set1_ps(1.0f));
    const __m512 inv = _mm512_rcp14_ps(d);
    return (vf16)_mm512_mul_ps(inv, _mm512_fnmadd_ps(d, inv, _mm512_set1_ps(2.0f)));
}
static inline vf16 silu16(vf16 v) { return (vf16)_mm512_mul_ps((__m512)v, (__m512)sigmoid16(v)); }
/* Swish to about 1.5e-4 relative, in 9 instructions instead of 14, for values about to be rounded to bfloat16
 * (error up to 2^-8 relative): it changes a rounded value only within 1.5e-4 of a rounding boundary.
 * exp(-v) = 2^t, t = -v log2(e), as 2^floor(t) (scalef floors its exponent) times a degree-3 fit of 2^f on
 * [0, 1), f = t - floor(t) (reduce; 7.5e-5), and the 14-bit reciprocal estimate without a Newton step. No clamp:
 * 2^t overflows to inf for v < -88 and the result is then v * 0 = -0, Swish's limit. */
static inline vf16 silu16_coarse(vf16 v) {
    const __m512 t = _mm512_mul_ps((__m512)v, _mm512_set1_ps(-1.44269504f));
    const __m512 f = fraction16(t);
    __m512 p = _mm512_fmadd_ps(f, _mm512_set1_ps(0.0780245200f), _mm512_set1_ps(0.226067200f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.695833470f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.999925220f));
    const __m512 d = _mm512_add_ps(_mm512_scalef_ps(p, t), _mm512_set1_ps(1.0f));
    return (vf16)_mm512_mul_ps((__m512)v, _mm512_rcp14_ps(d));
}
#else
/* 1 + exp(-v) for 16 floats, portable: exp(-v) = 2^k * poly(r), relative error about 1e-7. */
static inline vf16 one_plus_exp_neg16(vf16 v) {
    const vf16 zero = {0};
    vf16 x = -v;
    x = select16((vu16)(x < zero - 87.0f), zero - 87.0f, x);
    x = select16((vu16)(x > zero + 88.0f), zero + 88.0f, x);
    vf16 kf = x * 1.44269504f + 12582912.0f; /* + 1.5 * 2^23 rounds to the nearest integer */
    vf16 k = kf - 12582912.0f;
    vf16 r = x - k * 0.693145752f - k * 1.42860677e-6f;
    vf16 p = r * 1.98756912e-4f + 1.39819994e-3f;
    p = p * r + 8.33345205e-3f;
    p = p * r + 4.16657962e-2f;
    p = p * r + 1.66666657e-1f;
    p = p * r + 5.00000012e-1f;
    p = p * r * r + r + 1.0f;
    vf16 two_k = (vf16)((((vu16)kf) - 0x4B400000u + 127u) << 23);
    return 1.0f + p * two_k;
}
static inline vf16 sigmoid16(vf16 v) { return 1.0f / one_plus_exp_neg16(v); }
static inline vf16 silu16(vf16 v) { return v / one_plus_exp_neg16(v); }
static inline vf16 silu16_coarse(vf16 v) { return silu16(v); }
#endif

/* Swish (v * sigmoid(v)) over d contiguous floats, in place. */
static inline void silu_row(float *o, long d) {
    long c = 0;
    for (; c + 16 <= d; c += 16) *(vf16 *)(o + c) = silu16(*(vf16 *)(o + c));
    if (c < d) { /* the last d % 16 values, through a zero-padded vector */
        float tail[16] = {0};
        memcpy(tail, o + c, sizeof(float) * (size_t)(d - c));
        *(vf16 *)tail = silu16(*(vf16 *)tail);
        memcpy(o + c, tail, sizeof(float) * (size_t)(d - c));
    }
}

/* f rounded to bfloat16 (nearest even; NaN stays a quiet NaN): the bits a torch.bfloat16 tensor holds. */
static inline uint16_t bf16_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((u >> 16) | 0x40u);
    return (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

/* dst[0:16] = v rounded to bfloat16 (nearest even). */
static inline void store_bf16x16(uint16_t *dst, vf16 v) {
#if defined(__AVX512BF16__) && defined(__AVX512VL__)
    _mm256_storeu_si256((__m256i *)dst, (__m256i)_mm512_cvtneps_pbh((__m512)v));
#else
    float t[16];
    memcpy(t, &v, sizeof t);
    for (int i = 0; i < 16; i++) dst[i] = bf16_bits(t[i]);
#endif
}

/* 16 bfloat16 values widened to float32 (exactly: a bfloat16 is a float32's upper half). */
static inline vf16 load_bf16x16(const uint16_t *src) {
#ifdef __AVX512F__
    return (vf16)_mm512_castsi512_ps(
        _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)src)), 16));
#else
    uint32_t t[16];
    for (int i = 0; i < 16; i++) t[i] = (uint32_t)src[i] << 16;
    vf16 v;
    memcpy(&v, t, sizeof v);
    return v;
#endif
}

/* ReLU that keeps NaN, as torch.relu does (maxps returns its second operand when either is NaN). */
#ifdef __AVX512F__
static inline vf16 relu16(vf16 v) { return (vf16)_mm512_max_ps(_mm512_setzero_ps(), (__m512)v); }
#else
static inline vf16 relu16(vf16 v) { const vf16 zero = {0}; return select16((vu16)(v < zero), zero, v); }
#endif

#endif
