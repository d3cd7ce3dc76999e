/* Fused CPU kernels for the inference path of VoV3D and X3D (see vov3d/ops/inference_kernels.py).
 *
 * Every tensor is float32, contiguous, channels last: (N, T, H, W, C), C innermost, so each inner loop
 * runs over channels and vectorises (built with -O3 -march=native). Threads: OpenMP, the runtime torch
 * itself uses (the library is loaded after torch), over frames or rows.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vector.h"

/* Element i of a float32 or bfloat16 array. */
static inline const void *element(const void *p, long i, int bf16) { return (const char *)p + i * (bf16 ? 2 : 4); }

/* The frames of x that the temporal taps of output frame ti read (zero padding kt/2 outside the clip):
 * fills src[] with their offsets in x's frames and tap[] with their weights; returns how many. */
static int temporal_sources(const float *xn, const float *wt, int kt, int t_in, int ti, long frame, int d,
                            const float **src, const float **tap) {
    int k = 0;
    for (int j = 0; j < kt; j++) {
        int tj = ti + j - kt / 2;
        if (tj < 0 || tj >= t_in) continue;
        src[k] = xn + tj * frame;
        tap[k] = wt + (long)j * d;
        k++;
    }
    return k;
}

/* What temporal_mix applies to its output. POST_SILU_COARSE: silu16_coarse, for outputs that a bfloat16 product
 * reads next (the silu_out == SILU_COARSE of the entry points). */
enum { POST_NONE, POST_RELU, POST_SILU, POST_SILU_COARSE };
enum { SILU_NONE, SILU_EXACT, SILU_COARSE }; /* silu_out of vov3d_depthwise_st and vov3d_d2plus1d */

/* temporal_mix for the 16 channels at c of every pixel; k is a constant at the calls that matter (the
 * sources and taps then stay in registers). The first `done` lanes were done by the block before (see
 * temporal_mix): they are stored again, identically, and left out of the sums. */
static inline __attribute__((always_inline)) void temporal_mix16(const float **src, const float **tap, int k, long at,
                                                                 long npix, int d, int c, int done, int relu_in,
                                                                 const float *bias, int post, float *fs, void *dst,
                                                                 int bf16_out) {
    const float *s[16];
    vf16 w[16];
    for (int q = 0; q < k; q++) s[q] = src[q] + at + c, w[q] = *(const vf16 *)(tap[q] + c);
    const vf16 b = bias ? *(const vf16 *)(bias + c) : (vf16){0};
    vf16 sum = {0};
    for (long p = 0; p < npix; p++) {
        vf16 acc = b;
        for (int q = 0; q < k; q++) {
            const vf16 v = *(const vf16 *)(s[q] + p * d);
            acc += w[q] * (relu_in ? relu16(v) : v);
        }
        sum += acc;
        const vf16 o = post == POST_RELU          ? relu16(acc)
                       : post == POST_SILU        ? silu16(acc)
                       : post == POST_SILU_COARSE ? silu16_coarse(acc)
                                                  : acc;
        if (bf16_out)
            store_bf16x16((uint16_t *)dst + p * d + c, o);
        else
            *(vf16 *)((float *)dst + p * d + c) = o;
    }
    if (fs) {
        const vu16 lane = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
        *(vf16 *)(fs + c) += (vf16)((vu16)sum & (vu16)(lane >= (uint32_t)done));
    }
}

/* dst[p][c] = post(bias[c] + sum_q tap[q][c] * act(src[q][off + p * d + c])) for p < npix, where act is ReLU
 * when relu_in, and post is POST_NONE, POST_RELU or POST_SILU[_COARSE] (Swish); bias may be NULL (zero). Adds the
 * sums over the pixels (before post) to fs when given. dst is float32, or bfloat16 (rounded) when bf16_out. One
 * block of 16 channels at a time over the pixels, its k taps in registers. */
static void temporal_mix(const float **src, const float **tap, int k, long off, long npix, int d, int relu_in,
                         const float *bias, int post, float *fs, void *dst, int bf16_out) {
    if (d < 16) { /* fewer channels than one vector */
        for (long p = 0; p < npix; p++) {
            for (int c = 0; c < d; c++) {
                float acc = bias ? bias[c] : 0.0f;
                for (int q = 0; q < k; q++) {
                    float v = src[q][off + p * d + c];
                    acc += tap[q][c] * (relu_in && v < 0.0f ? 0.0f : v);
                }
                if (fs) fs[c] += acc;
                const float o = post == POST_RELU ? (acc < 0.0f ? 0.0f : acc)
                                : post >= POST_SILU ? acc / (1.0f + expf(-acc)) : acc;
                if (bf16_out)
                    ((uint16_t *)dst)[p * d + c] = bf16_bits(o);
                else
                    ((float *)dst)[p * d + c] = o;
            }
        }
        return;
    }
    for (int c0 = 0; c0 < d; c0 += 16) {
        const int c = c0 + 16 <= d ? c0 : d - 16; /* overlap the block before: no scalar tail */
#define MIX(K) temporal_mix16(src, tap, K, off, npix, d, c, c0 - c, relu_in, bias, post, fs, dst, bf16_out)
        switch (k) {
        case 1: MIX(1); break;
        case 2: MIX(2); break;
        case 3: MIX(3); break;
        case 4: MIX(4); break;
        case 5: MIX(5); break;
        default: MIX(k);
        }
#undef MIX
    }
}

/* One output row of the 3x3 depthwise conv over three padded mixed rows r0, r1, r2 ((W + 2) x D each):
 * out[ow][c] = bias[c] + sum_{dh, dw} ws[dh * 3 + dw][c] * r_dh[ow * stride + dw][c]. Adds the row's sums
 * (before Swish) to fs when given; applies Swish when silu_out (SILU_EXACT or SILU_COARSE); out is float32, or
 * bfloat16 (rounded) when bf16_out. Weights stay in registers across the row and, at stride 1, each input column
 * is loaded once (a sliding 3x3 window). */
static void spatial_row(const float *r0, const float *r1, const float *r2, const float *ws, const float *bias,
                        int wo, int d, int stride, void *out, float *fs, int silu_out, int bf16_out) {
    if (d < 16) { /* fewer channels than one vector */
        for (int c = 0; c < d; c++) {
            float sum = 0.0f;
            for (int ow = 0; ow < wo; ow++) {
                const long col = (long)ow * stride * d + c;
                float acc = bias[c];
                for (int k = 0; k < 3; k++)
                    acc += ws[k * d + c] * r0[col + k * d] + ws[(3 + k) * d + c] * r1[col + k * d] +
                           ws[(6 + k) * d + c] * r2[col + k * d];
                sum += acc;
                const float o = silu_out ? acc / (1.0f + expf(-acc)) : acc;
                if (bf16_out)
                    ((uint16_t *)out)[(long)ow * d + c] = bf16_bits(o);
                else
                    ((float *)out)[(long)ow * d + c] = o;
            }
            if (fs) fs[c] += sum;
        }
        return;
    }
    const vu16 lane = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    for (int c0 = 0; c0 < d; c0 += 16) {
        /* When d is not a multiple of 16 the last block overlaps the one before: its first `done` lanes are
         * computed again, identically (stores are idempotent), and left out of the frame sums. */
        const int c = c0 + 16 <= d ? c0 : d - 16;
        const uint32_t done = (uint32_t)(c0 - c);
#define W(k) (*(const vf16 *)(ws + (k) * d + c))
#define AT(r, col) (*(const vf16 *)((r) + (long)(col) * d + c))
        const vf16 w0 = W(0), w1 = W(1), w2 = W(2), w3 = W(3), w4 = W(4), w5 = W(5), w6 = W(6), w7 = W(7), w8 = W(8);
        const vf16 b = *(const vf16 *)(bias + c);
        vf16 sum = {0};
        vf16 a0 = AT(r0, 0), a1 = AT(r0, 1), b0 = AT(r1, 0), b1 = AT(r1, 1), e0 = AT(r2, 0), e1 = AT(r2, 1);
        for (int ow = 0; ow < wo; ow++) {
            const int col = ow * stride;
            if (stride != 1) {
                a0 = AT(r0, col), a1 = AT(r0, col + 1), b0 = AT(r1, col), b1 = AT(r1, col + 1);
                e0 = AT(r2, col), e1 = AT(r2, col + 1);
            }
            const vf16 a2 = AT(r0, col + 2), b2 = AT(r1, col + 2), e2 = AT(r2, col + 2);
            vf16 acc = b + w0 * a0 + w1 * a1 + w2 * a2 + w3 * b0 + w4 * b1 + w5 * b2 + w6 * e0 + w7 * e1 + w8 * e2;
            sum += acc;
            const vf16 o = silu_out == SILU_COARSE ? silu16_coarse(acc) : silu_out ? silu16(acc) : acc;
            if (bf16_out)
                store_bf16x16((uint16_t *)out + (long)ow * d + c, o);
            else
                *(vf16 *)((float *)out + (long)ow * d + c) = o;
            a0 = a1, a1 = a2, b0 = b1, b1 = b2, e0 = e1, e1 = e2;
        }
        if (fs) *(vf16 *)(fs + c) += (vf16)((vu16)sum & (vu16)(lane >= done));
#undef W
#undef AT
    }
}

/* D(2+1)D's depthwise stages, fused: y = bias + S(Tm(act(x))), where Tm is the kt x 1 x 1 temporal conv
 * (zero padding kt/2) and S the 1 x 3 x 3 spatial conv (padding 1, stride `stride`). Both are per-channel
 * linear maps, so Tm(S(.)) == S(Tm(.)): we mix frames first, row by row, into a ring of three padded
 * rows (they stay in L1/L2), then run the 3x3 conv over the ring. act is ReLU when relu_in (the
 * preceding 1x1x1 conv's ReLU), else identity. One task per output frame.
 *   x: (N, T, H, W, D); wt: (kt, D); ws: (9, D) as [dh * 3 + dw]; bias: (D);
 *   y: (N, T, Ho, Wo, D) with Ho = (H - 1) / stride + 1;
 *   frame_sum: (N, T, D) sums of y over each frame (before Swish; for squeeze-excitation), or NULL;
 *   silu_out: apply Swish to y: SILU_EXACT, or SILU_COARSE (silu16_coarse) when a bfloat16 product reads y;
 *   bf16_out: y is bfloat16 (rounded to nearest even), for a bfloat16 product that reads it as it is. */
void vov3d_depthwise_st(const float *x, const float *wt, int kt, const float *ws, const float *bias, void *y,
                        float *frame_sum, int n, int t, int h, int w, int d, int stride, int relu_in,
                        int silu_out, int bf16_out) {
    const int ho = (h - 1) / stride + 1, wo = (w - 1) / stride + 1;
    const long frame = (long)h * w * d, oframe = (long)ho * wo * d, padded_row = (long)(w + 2) * d;
    if (kt > 16) return; /* the Python wrapper rejects this */
#pragma omp parallel
    {
        float *ring = (float *)malloc(sizeof(float) * (size_t)(3 * padded_row));
#pragma omp for schedule(static)
        for (long task = 0; task < (long)n * t; task++) {
            const float *src[16], *tap[16];
            const int k = temporal_sources(x + (task / t) * t * frame, wt, kt, t, (int)(task % t), frame, d, src, tap);
            float *fs = frame_sum ? frame_sum + task * d : NULL;
            if (fs) memset(fs, 0, sizeof(float) * (size_t)d);
            int held[3] = {-1000000, -1000000, -1000000};
            for (int oh = 0; oh < ho; oh++) {
                const float *rows[3];
                for (int dh = 0; dh < 3; dh++) {
                    const int ih = oh * stride - 1 + dh;
                    const int s = ((ih % 3) + 3) % 3;
                    float *slot = ring + s * padded_row;
                    if (held[s] != ih) {
                        if (ih < 0 || ih >= h) { /* a zero-padding row */
                            memset(slot, 0, sizeof(float) * (size_t)padded_row);
                        } else {
                            memset(slot, 0, sizeof(float) * (size_t)d); /* the padding columns */
                            memset(slot + (long)(w + 1) * d, 0, sizeof(float) * (size_t)d);
                            temporal_mix(src, tap, k, (long)ih * w * d, w, d, relu_in, NULL, POST_NONE, NULL, slot + d,
                                         0);
                        }
                        held[s] = ih;
                    }
                    rows[dh] = slot;
                }
                const long at = task * oframe + (long)oh * wo * d;
                spatial_row(rows[0], rows[1], rows[2], ws, bias, wo, d, stride, (void *)element(y, at, bf16_out), fs,
                            silu_out, bf16_out);
            }
        }
        free(ring);
    }
}

/* The matrix product of a 1x1x1 conv with what surrounds it in a VoV3D layer, fused:
 *   C[r, :] = post(pre(A[r, :]) @ B + bias + Res[r, :])   for r < rows,
 * where A = [A_0 | A_1 | ...] is the concatenation along columns of nseg matrices (T-OSA's aggregation
 * reads the layer outputs where they are: no concatenation is ever written), A_i with ka[i] columns and
 * row stride lda[i] (A_0's rows may also come in groups of `group` rows, groups `group_stride` floats apart:
 * a strided shortcut read in place); pre(a)[k] = Swish(a[k] * scale[k]) when scale is given
 * (squeeze-excitation + Swish), else a; post = ReLU when relu, else identity; Res (residual) may be NULL.
 * Res and C have contiguous rows and their own row strides; C must not overlap A. B is (K, ldb) row-major
 * and bias (ldb), ldb >= N a multiple of 8, with zeros beyond N (bf16: see gemm_block_bf16).
 * Narrow products (N or K of 24-96) are where MKL reaches only 40-70% of its peak; this kernel keeps an
 * 8-row by 32-column block of C in registers (8 x 2 vectors) while it runs over K. */
#define GEMM_MR 8

static inline vf8 relu8(vf8 v) {
    vf8 zero = (vf8){0};
    return (vf8)(~(__typeof__(v < zero))(v < zero) & (__typeof__(v < zero))v);
}

/* out[0:16] = post(v + res[0:16]) (res may be NULL; post is ReLU when relu). */
static inline void store16(vf16 v, const float *res, int relu, float *out) {
    if (res) v += *(const vf16 *)res;
    *(vf16 *)out = relu ? relu16(v) : v;
}

/* out[0:nc] = post(v + res[0:nc]) for nc <= 8 valid lanes of v (res may be NULL; post is ReLU when relu). */
static inline void store8(vf8 v, int nc, const float *res, int relu, float *out) {
#if defined(__AVX512F__) && defined(__AVX512VL__)
    const __mmask8 m = (__mmask8)((1u << nc) - 1);
    if (res) v += (vf8)_mm256_maskz_loadu_ps(m, res);
    if (relu) v = (vf8)_mm256_max_ps(_mm256_setzero_ps(), (__m256)v);
    _mm256_mask_storeu_ps(out, m, (__m256)v);
#else
    if (nc == 8) {
        if (res) v += *(const vf8 *)res;
        *(vf8 *)out = relu ? relu8(v) : v;
        return;
    }
    float t[8];
    *(vf8 *)t = v;
    for (int j = 0; j < nc; j++) {
        float x = t[j] + (res ? res[j] : 0.0f);
        out[j] = relu && x < 0.0f ? 0.0f : x;
    }
#endif
}

/* C[r, c:c + 16 * nv + (8 if has8)] for the 8 contiguous rows of A (K columns; r < mr stored): nv 16-wide
 * vectors (0-2) and, when has8, one 8-wide vector of which nc lanes are stored (the columns beyond N
 * exist in B and bias as zero padding but are neither read from res nor stored). nv and has8 are
 * constants at every call (always inlined), so each call is its own loop with its accumulators in registers. */
static inline __attribute__((always_inline)) void tile_f32(const float *A, int K, const float *B, long ldb, int c,
                                                           int nv, int has8, int nc, const float *bias,
                                                           const float *res, long ldr, int relu, float *C, long ldc,
                                                           int mr) {
    vf16 acc0[GEMM_MR], acc1[GEMM_MR];
    vf8 acc8[GEMM_MR];
#pragma GCC unroll 8
    for (int r = 0; r < GEMM_MR; r++) acc0[r] = acc1[r] = (vf16){0}, acc8[r] = (vf8){0};
    for (int k = 0; k < K; k++) {
        const float *b = B + (long)k * ldb + c;
        const vf16 b0 = nv > 0 ? *(const vf16 *)b : (vf16){0};
        const vf16 b1 = nv > 1 ? *(const vf16 *)(b + 16) : (vf16){0};
        const vf8 b8 = has8 ? *(const vf8 *)(b + 16 * nv) : (vf8){0};
#pragma GCC unroll 8
        for (int r = 0; r < GEMM_MR; r++) {
            const float a = A[(long)r * K + k];
            if (nv > 0) acc0[r] += a * b0;
            if (nv > 1) acc1[r] += a * b1;
            if (has8) acc8[r] += a * b8;
        }
    }
    for (int r = 0; r < mr; r++) {
        const float *rr = res ? res + r * ldr + c : NULL;
        float *out = C + r * ldc + c;
        if (nv > 0) store16(acc0[r] + *(const vf16 *)(bias + c), rr, relu, out);
        if (nv > 1) store16(acc1[r] + *(const vf16 *)(bias + c + 16), rr ? rr + 16 : NULL, relu, out + 16);
        if (has8)
            store8(acc8[r] + *(const vf8 *)(bias + c + 16 * nv), nc, rr ? rr + 16 * nv : NULL, relu, out + 16 * nv);
    }
}

/* C[r, :N] for the 8 contiguous rows of A (K columns; r < mr stored). B: (K, ldb) with ldb >= N rounded up
 * to 8 and zero columns beyond N; bias likewise padded. 32 columns at a time, 17-24 left (24 in VoV3D-M,
 * 20 in v2) in one pass over K, then 16, then 8. */
static void gemm_block(const float *A, int K, const float *B, long ldb, int N, const float *bias,
                       const float *res, long ldr, int relu, float *C, long ldc, int mr) {
    int c = 0;
    for (; c + 32 <= N; c += 32) tile_f32(A, K, B, ldb, c, 2, 0, 0, bias, res, ldr, relu, C, ldc, mr);
    if (N - c > 16 && N - c <= 24) {
        tile_f32(A, K, B, ldb, c, 1, 1, N - c - 16, bias, res, ldr, relu, C, ldc, mr);
        c = N;
    }
    for (; c + 16 <= N; c += 16) tile_f32(A, K, B, ldb, c, 1, 0, 0, bias, res, ldr, relu, C, ldc, mr);
    for (; c < N; c += 8) tile_f32(A, K, B, ldb, c, 0, 1, N - c < 8 ? N - c : 8, bias, res, ldr, relu, C, ldc, mr);
}

#if defined(__AVX512BF16__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#define HAVE_BF16 1
/* The same products with bfloat16 inputs (AVX512_BF16's dot product of pairs, float32 accumulation):
 * A's rows are rounded to bfloat16 as they are gathered; B is packed as (ceil(K / 2), ldb, 2) bfloat16
 * pairs, B2[k][c] = (B[2k][c], B[2k + 1][c]), zero beyond K and N. Twice the float32 rate. */

/* dst[0:n] = pre(src[0:n]) rounded to bfloat16 (nearest even), pre(v) = Swish(v * scale) when scale is
 * given (silu16_coarse: its error is far below the rounding's), else v: one pass, 16 at a time, the tail
 * through masks. */
static void pre_bf16(const float *src, int n, const float *scale, uint16_t *dst) {
    for (int j = 0; j < n; j += 16) {
        const __mmask16 m = n - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - j)) - 1);
        __m512 v = _mm512_maskz_loadu_ps(m, src + j);
        if (scale) v = (__m512)silu16_coarse((vf16)_mm512_mul_ps(v, _mm512_maskz_loadu_ps(m, scale + j)));
        _mm256_mask_storeu_epi16(dst + j, m, (__m256i)_mm512_cvtneps_pbh(v));
    }
}

/* Where a bfloat16 product's sums go: C = post(sums + bias + Res), Res (may be NULL) and C each float32 or
 * bfloat16 (C rounded to nearest even; a bfloat16 Res is widened exactly), row strides in their elements. */
typedef struct {
    const float *bias;
    const void *res;
    long ldr;
    int res_bf16;
    int relu;
    void *out;
    long ldc;
    int out_bf16;
} epilogue;

/* The epilogue of the rows from r0 on of a product whose C (and Res, if any) have the given row strides. */
static inline epilogue rows_epilogue(const float *bias, const void *res, long ldr, int res_bf16, int relu, void *C,
                                     long ldc, int out_bf16, long r0) {
    return (epilogue){bias, res ? element(res, r0 * ldr, res_bf16) : NULL, ldr, res_bf16, relu,
                      (void *)element(C, r0 * ldc, out_bf16), ldc, out_bf16};
}

/* out[0:16] = post(v + res[0:16]) as the epilogue says, for row r and column c of C. */
static inline void store16_io(vf16 v, const epilogue *e, int r, int c) {
    if (e->res)
        v += e->res_bf16 ? load_bf16x16((const uint16_t *)element(e->res, r * e->ldr + c, 1))
                         : *(const vf16 *)element(e->res, r * e->ldr + c, 0);
    if (e->relu) v = relu16(v);
    if (e->out_bf16)
        store_bf16x16((uint16_t *)element(e->out, r * e->ldc + c, 1), v);
    else
        *(vf16 *)element(e->out, r * e->ldc + c, 0) = v;
}

/* store16_io for the first nc <= 8 lanes of v. */
static inline void store8_io(vf8 v, int nc, const epilogue *e, int r, int c) {
    const __mmask8 m = (__mmask8)((1u << nc) - 1);
    if (e->res) {
        const void *res = element(e->res, r * e->ldr + c, e->res_bf16);
        v += e->res_bf16
                 ? (vf8)_mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_maskz_loadu_epi16(m, res)), 16))
                 : (vf8)_mm256_maskz_loadu_ps(m, res);
    }
    if (e->relu) v = (vf8)_mm256_max_ps(_mm256_setzero_ps(), (__m256)v);
    if (e->out_bf16)
        _mm_mask_storeu_epi16((void *)element(e->out, r * e->ldc + c, 1), m, (__m128i)_mm256_cvtneps_pbh((__m256)v));
    else
        _mm256_mask_storeu_ps((void *)element(e->out, r * e->ldc + c, 0), m, (__m256)v);
}

/* dst[0:n] = pre(src[0:n]) for bfloat16 src: pre_bf16's Swish(v * scale) rounded when scale is given, else a
 * copy, 32 at a time (a row segment of a few dozen values: no memcpy call). */
static inline void copy_bf16(const uint16_t *src, int n, const float *scale, uint16_t *dst) {
    if (scale) {
        for (int j = 0; j < n; j += 16) {
            const __mmask16 m = n - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - j)) - 1);
            const __m512i wide = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, src + j));
            const __m512 v = _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16));
            const vf16 o = silu16_coarse((vf16)_mm512_mul_ps(v, _mm512_maskz_loadu_ps(m, scale + j)));
            _mm256_mask_storeu_epi16(dst + j, m, (__m256i)_mm512_cvtneps_pbh((__m512)o));
        }
        return;
    }
    for (int j = 0; j < n; j += 32) {
        const __mmask32 m = n - j >= 32 ? (__mmask32)0xFFFFFFFFu : (__mmask32)((1u << (n - j)) - 1);
        _mm512_mask_storeu_epi16(dst + j, m, _mm512_maskz_loadu_epi16(m, src + j));
    }
}

/* tile_f32 with bf16 inputs: 8 rows of A as K2 bf16 pairs each (read as uint32), B packed as above; the
 * epilogue's res and out at the block's first row. */
static inline __attribute__((always_inline)) void tile_bf16(const uint32_t *A, int K2, const uint16_t *B, long ldb,
                                                            int c, int nv, int has8, int nc, const epilogue *e,
                                                            int mr) {
    __m512 acc0[GEMM_MR], acc1[GEMM_MR];
    __m256 acc8[GEMM_MR];
#pragma GCC unroll 8
    for (int r = 0; r < GEMM_MR; r++) acc0[r] = acc1[r] = _mm512_setzero_ps(), acc8[r] = _mm256_setzero_ps();
    for (int k = 0; k < K2; k++) {
        const uint16_t *b = B + ((long)k * ldb + c) * 2;
        const __m512bh b0 = (__m512bh)_mm512_loadu_si512(b);
        const __m512bh b1 = nv > 1 ? (__m512bh)_mm512_loadu_si512(b + 32) : b0;
        const __m256bh b8 = has8 ? (__m256bh)_mm256_loadu_si256((const __m256i *)(b + nv * 32))
                                 : (__m256bh)_mm256_setzero_si256();
#pragma GCC unroll 8
        for (int r = 0; r < GEMM_MR; r++) {
            const __m512i a = _mm512_set1_epi32((int)A[(long)r * K2 + k]);
            if (nv > 0) acc0[r] = _mm512_dpbf16_ps(acc0[r], (__m512bh)a, b0);
            if (nv > 1) acc1[r] = _mm512_dpbf16_ps(acc1[r], (__m512bh)a, b1);
            if (has8) acc8[r] = _mm256_dpbf16_ps(acc8[r], (__m256bh)_mm512_castsi512_si256(a), b8);
        }
    }
    for (int r = 0; r < mr; r++) {
        if (nv > 0) store16_io((vf16)acc0[r] + *(const vf16 *)(e->bias + c), e, r, c);
        if (nv > 1) store16_io((vf16)acc1[r] + *(const vf16 *)(e->bias + c + 16), e, r, c + 16);
        if (has8) store8_io((vf8)acc8[r] + *(const vf8 *)(e->bias + c + 16 * nv), nc, e, r, c + 16 * nv);
    }
}

/* gemm_block with bf16 inputs: A is 8 rows of K2 bf16 pairs (as uint32), B packed as above. 33-40 columns left
 * (v2's 40) also run in one pass: an 8-wide pass alone waits on its 8 sums' latency (5-9% on N = 40; float32
 * gained nothing). */
static void gemm_block_bf16(const uint32_t *A, int K2, const uint16_t *B, long ldb, int N, const epilogue *e,
                            int mr) {
    int c = 0;
    for (; c + 32 <= N && !(N - c > 32 && N - c <= 40); c += 32)
        tile_bf16(A, K2, B, ldb, c, 2, 0, 0, e, mr);
    if (N - c > 32) { /* 33-40 columns: one pass over K */
        tile_bf16(A, K2, B, ldb, c, 2, 1, N - c - 32, e, mr);
        c = N;
    }
    if (N - c > 16 && N - c <= 24) { /* 17-24 columns: one pass over K */
        tile_bf16(A, K2, B, ldb, c, 1, 1, N - c - 16, e, mr);
        c = N;
    }
    for (; c + 16 <= N; c += 16) tile_bf16(A, K2, B, ldb, c, 1, 0, 0, e, mr);
    for (; c < N; c += 8) tile_bf16(A, K2, B, ldb, c, 0, 1, N - c < 8 ? N - c : 8, e, mr);
}

/* Rows a[r * lda] (r < mr, K floats each) rounded into the bf16 block buf (8 rows of K2 pairs, zero rows
 * and a zero after an odd K), then the product. */
static void gemm_rows_bf16(const float *a, long lda, int K, uint16_t *buf, const uint16_t *B, long ldb, int N,
                           const epilogue *e, int mr) {
    const int k2 = (K + 1) / 2;
    for (int r = 0; r < GEMM_MR; r++) {
        uint16_t *dst = buf + (long)r * k2 * 2;
        if (r >= mr) {
            memset(dst, 0, sizeof(uint16_t) * (size_t)k2 * 2);
            continue;
        }
        pre_bf16(a + r * lda, K, NULL, dst);
        if (K % 2) dst[K] = 0;
    }
    gemm_block_bf16((const uint32_t *)buf, k2, B, ldb, N, e, mr);
}
#else
#define HAVE_BF16 0
#endif

/* Whether this build has the bfloat16 products (the CPU it was built for has AVX512_BF16). */
int vov3d_has_bf16(void) { return HAVE_BF16; }

/* dst[0:n] = pre(src[0:n]), pre(v) = Swish(v * scale) when scale is given (silu16), else v. */
static inline void pre_f32(const float *src, int n, const float *scale, float *dst) {
    if (!scale) {
        memcpy(dst, src, sizeof(float) * (size_t)n);
        return;
    }
#ifdef __AVX512F__
    for (int j = 0; j < n; j += 16) {
        const __mmask16 m = n - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - j)) - 1);
        const __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, src + j), _mm512_maskz_loadu_ps(m, scale + j));
        _mm512_mask_storeu_ps(dst + j, m, (__m512)silu16((vf16)v));
    }
#else
    for (int k = 0; k < n; k++) dst[k] = src[k] * scale[k];
    silu_row(dst, n);
#endif
}

/* Where row `row` of A's segment i starts, in elements from A[i] (see vov3d_gemm's group). */
static inline long row_offset(const long *lda, long group, long group_stride, int i, long row) {
    return group && !i ? row / group * group_stride + row % group * lda[0] : row * lda[i];
}

/* B is float32 (K, ldb), or bf16 pairs ((K + 1) / 2, ldb, 2) when bf16 (only in a build with HAVE_BF16).
 * group = 0: A_0's rows are lda[0] apart; else row r is at (r / group) * group_stride + (r % group) * lda[0].
 * bf16 == 2: A's segments are bfloat16 already (lda and group_stride in bfloat16 elements): one segment of an
 * even K with contiguous rows and no scale is read as B's pairs are, in place; else its rows are copied together
 * (with pre applied, widened, and rounded again).
 * io (bf16 products only): IO_RES_BF16, Res is bfloat16; IO_OUT_BF16, C is bfloat16 (rounded). */
enum { IO_RES_BF16 = 1, IO_OUT_BF16 = 2 };
void vov3d_gemm(const void *const *A, const long *lda, const int *ka, int nseg, long group, long group_stride,
                long rows, const void *B, int bf16, long ldb, int N, const float *bias, const float *scale,
                const void *res, long ldr, int relu, void *C, long ldc, int io) {
    const long blocks = (rows + GEMM_MR - 1) / GEMM_MR;
    int K = 0;
    for (int i = 0; i < nseg; i++) K += ka[i];
    const int direct = nseg == 1 && lda[0] == K && !scale && !group;
#if HAVE_BF16
    const int res_bf16 = (io & IO_RES_BF16) != 0, out_bf16 = (io & IO_OUT_BF16) != 0;
    if (bf16 == 2) {
        const int kp = (K + 1) / 2 * 2, in_place = direct && K % 2 == 0;
#pragma omp parallel
        {
            uint16_t *buf16 = (uint16_t *)malloc(sizeof(uint16_t) * (size_t)GEMM_MR * kp);
#pragma omp for schedule(static)
            for (long blk = 0; blk < blocks; blk++) {
                const long r0 = blk * GEMM_MR;
                const int mr = rows - r0 < GEMM_MR ? (int)(rows - r0) : GEMM_MR;
                const uint16_t *a = (const uint16_t *)A[0] + r0 * lda[0];
                if (!in_place || mr < GEMM_MR) { /* segments side by side, zero rows and a zero after an odd K */
                    memset(buf16, 0, sizeof(uint16_t) * (size_t)GEMM_MR * kp);
                    for (int r = 0; r < mr; r++)
                        for (int i = 0, k0 = 0; i < nseg; k0 += ka[i], i++)
                            copy_bf16((const uint16_t *)A[i] + row_offset(lda, group, group_stride, i, r0 + r),
                                      ka[i], scale ? scale + k0 : NULL, buf16 + (long)r * kp + k0);
                    a = buf16;
                }
                const epilogue e = rows_epilogue(bias, res, ldr, res_bf16, relu, C, ldc, out_bf16, r0);
                gemm_block_bf16((const uint32_t *)a, kp / 2, (const uint16_t *)B, ldb, N, &e, mr);
            }
            free(buf16);
        }
        return;
    }
#endif
#pragma omp parallel
    {
        /* The A block, gathered (and transformed by pre) into a contiguous, zero-padded buffer. */
        float *buf = bf16 ? NULL : (float *)malloc(sizeof(float) * (size_t)GEMM_MR * K);
        uint16_t *buf16 = bf16 ? (uint16_t *)malloc(sizeof(uint16_t) * (size_t)GEMM_MR * (K + 1)) : NULL;
#pragma omp for schedule(static)
        for (long blk = 0; blk < blocks; blk++) {
            const long r0 = blk * GEMM_MR;
            const int mr = rows - r0 < GEMM_MR ? (int)(rows - r0) : GEMM_MR;
#if HAVE_BF16
            if (bf16) { /* gathered, pre applied and rounded in one pass per row */
                const int kp = (K + 1) / 2 * 2;
                for (int r = 0; r < GEMM_MR; r++) {
                    uint16_t *dst = buf16 + (long)r * kp;
                    if (r >= mr) {
                        memset(dst, 0, sizeof(uint16_t) * (size_t)kp);
                        continue;
                    }
                    for (int i = 0, k0 = 0; i < nseg; k0 += ka[i], i++)
                        pre_bf16((const float *)A[i] + row_offset(lda, group, group_stride, i, r0 + r), ka[i],
                                 scale ? scale + k0 : NULL, dst + k0);
                    if (K % 2) dst[K] = 0;
                }
                const epilogue e = rows_epilogue(bias, res, ldr, res_bf16, relu, C, ldc, out_bf16, r0);
                gemm_block_bf16((const uint32_t *)buf16, kp / 2, (const uint16_t *)B, ldb, N, &e, mr);
                continue;
            }
#endif
            float *c = (float *)C + r0 * ldc;
            const float *rs = res ? (const float *)res + r0 * ldr : NULL;
            const float *a = (const float *)A[0] + r0 * lda[0];
            if (!direct || mr < GEMM_MR) {
                for (int r = 0; r < GEMM_MR; r++) {
                    float *dst = buf + (long)r * K;
                    if (r >= mr) {
                        memset(dst, 0, sizeof(float) * (size_t)K);
                        continue;
                    }
                    for (int i = 0, k0 = 0; i < nseg; k0 += ka[i], i++)
                        pre_f32((const float *)A[i] + row_offset(lda, group, group_stride, i, r0 + r), ka[i],
                                scale ? scale + k0 : NULL, dst + k0);
                }
                a = buf;
            }
            gemm_block(a, K, (const float *)B, ldb, N, bias, rs, ldr, relu, c, ldc, mr);
        }
        free(buf16);
        free(buf);
    }
}

/* Rows [ih0, ih0 + nin) of one frame through the 1x1x1 conv and ReLU, C = relu(A @ B + bias) with A the frame's
 * (h * w, cin) pixels, into zero-padded rows: row ih0 + r lands at dst + r * (w + 2) * d + d. Rows outside the
 * frame are zeroed; the padding columns are left as they are (zero). B and bf16 as in vov3d_gemm (2: the frame's
 * pixels are bfloat16); abuf: 8 * cin floats, or 8 * (cin + 1) bf16 when bf16. */
static void band_pointwise(const void *frame, int cin, const void *B, int bf16, long ldb, const float *bias, int ih0,
                           int nin, int h, int w, int d, float *dst, void *abuf) {
    const long padded_row = (long)(w + 2) * d, end = (long)h * w;
    for (int r = 0; r < nin; r++) {
        const int ih = ih0 + r;
        float *row = dst + r * padded_row;
        if (ih < 0 || ih >= h) {
            memset(row, 0, sizeof(float) * (size_t)padded_row);
            continue;
        }
        for (int p0 = 0; p0 < w; p0 += GEMM_MR) {
            const int mr = w - p0 < GEMM_MR ? w - p0 : GEMM_MR;
            const long p = (long)ih * w + p0;
            const float *a = (const float *)frame + p * cin;
            float *out = row + (long)(p0 + 1) * d;
#if HAVE_BF16
            const epilogue e = {bias, NULL, 0, 0, 1, out, d, 0};
            if (bf16 == 2) { /* bfloat16 pixels: read in place, but at the frame's end or with an odd cin */
                const int kp = (cin + 1) / 2 * 2;
                const uint16_t *a16 = (const uint16_t *)frame + p * cin;
                if (cin % 2 || p + GEMM_MR > end) {
                    memset(abuf, 0, sizeof(uint16_t) * (size_t)GEMM_MR * kp);
                    for (int q = 0; q < mr; q++)
                        memcpy((uint16_t *)abuf + (long)q * kp, a16 + (long)q * cin, sizeof(uint16_t) * (size_t)cin);
                    a16 = (const uint16_t *)abuf;
                }
                gemm_block_bf16((const uint32_t *)a16, kp / 2, (const uint16_t *)B, ldb, d, &e, mr);
                continue;
            }
            if (bf16) { /* rounds only the mr rows: nothing beyond them is read */
                gemm_rows_bf16(a, cin, cin, (uint16_t *)abuf, (const uint16_t *)B, ldb, d, &e, mr);
                continue;
            }
#endif
            if (p + GEMM_MR > end) { /* the frame's last block: zero-padded copy, so that nothing beyond it is read */
                memset(abuf, 0, sizeof(float) * (size_t)GEMM_MR * cin);
                memcpy(abuf, a, sizeof(float) * (size_t)mr * cin);
                a = (const float *)abuf;
            }
            gemm_block(a, cin, (const float *)B, ldb, d, bias, NULL, 0, 1, out, d, mr);
        }
    }
}

/* out[r, c:c + 16 * nv + (8 if has8)] = sum_{q < nq, dw < 3} rows[q][r * stride + dw] *
 * B[q * 3 + dw, c:...] for the 8 output pixels r (r < mr stored, out rows N apart; of the 8-wide part, nc
 * lanes), rows[q] starting at the block's first input column: a product whose A is read in place from the
 * input rows (no gathered patch matrix), each value broadcast once to all the output channels' vectors. nv (0/1)
 * and has8 are constants at every call. */
static inline __attribute__((always_inline)) void stem_tile(const float *const *rows, int nq, int stride,
                                                            const float *B, long ldb, int c, int nv, int has8,
                                                            int nc, int N, float *out, int mr) {
    vf16 acc[GEMM_MR];
    vf8 acc8[GEMM_MR];
#pragma GCC unroll 8
    for (int r = 0; r < GEMM_MR; r++) acc[r] = (vf16){0}, acc8[r] = (vf8){0};
    for (int q = 0; q < nq; q++)
        for (int dw = 0; dw < 3; dw++) {
            const float *b = B + (long)(q * 3 + dw) * ldb + c;
            const vf16 b16 = nv ? *(const vf16 *)b : (vf16){0};
            const vf8 b8 = has8 ? *(const vf8 *)(b + 16 * nv) : (vf8){0};
            const float *src = rows[q] + dw;
#pragma GCC unroll 8
            for (int r = 0; r < GEMM_MR; r++) {
                if (nv) acc[r] += src[r * stride] * b16;
                if (has8) acc8[r] += src[r * stride] * b8;
            }
        }
    for (int r = 0; r < mr; r++) {
        if (nv) store16(acc[r], NULL, 0, out + (long)r * N + c);
        if (has8) store8(acc8[r], nc, NULL, 0, out + (long)r * N + c + 16 * nv);
    }
}

/* stem_tile over the N output channels (B padded to a multiple of 8 columns): 16 at a time, with 17-24
 * left (the stem's 24) in one pass. */
static void stem_block(const float *const *rows, int nq, int stride, const float *B, long ldb, int N,
                       float *out, int mr) {
    int c = 0;
    for (; N - c > 24 || N - c == 16; c += 16) stem_tile(rows, nq, stride, B, ldb, c, 1, 0, 0, N, out, mr);
    if (N - c > 16) {
        stem_tile(rows, nq, stride, B, ldb, c, 1, 1, N - c - 16, N, out, mr);
        return;
    }
    for (; c < N; c += 8)
        stem_tile(rows, nq, stride, B, ldb, c, 0, 1, N - c < 8 ? N - c : 8, N, out, mr);
}

/* The whole X3D stem, from the network's input layout, for one clip:
 *   y = ReLU(bias + Tm(S(x))),
 * S the 1 x 3 x 3 conv (padding 1, spatial stride `stride`, no bias), Tm the kt x 1 x 1 depthwise conv (zero
 * padding kt/2) with the folded BN's bias. A task computes `band` output rows of every frame: S's rows of
 * each frame the temporal taps reach go into a ring of kt frames (they stay in L2; each is computed once),
 * then the frames are mixed. S reads the input rows in place (stem_block): no layout change of the input,
 * no patch matrix, and S's output is never written to memory; only the blocks of 8 output pixels at a row's
 * ends, which read the zero padding, read a zero-padded copy of their columns.
 *   x: (cin, T, H, W); B: (cin * 9, ldb) packed as for vov3d_gemm, S's matrix [c * 9 + dh * 3 + dw, :];
 *   wt: (kt, N); bias: (N); y: (T, Ho, Wo, N), bfloat16 (rounded) when bf16_out. */
void vov3d_stem(const float *x, int cin, int t, int h, int w, const float *B, long ldb, int N, const float *wt,
                int kt, const float *bias, void *y, int stride, int band, int bf16_out) {
    const int ho = (h - 1) / stride + 1, wo = (w - 1) / stride + 1, nq = cin * 3;
    const int bands = (ho + band - 1) / band;
    const long plane = (long)t * h * w, span = (long)(GEMM_MR - 1) * stride + 3; /* the columns a block reads */
    const long slot = (long)band * wo * N;
    if (nq > 48 || kt > 16) return; /* the Python wrapper rejects this */
#pragma omp parallel
    {
        float *edge = (float *)malloc(sizeof(float) * (size_t)(nq * span));
        float *zero = (float *)calloc((size_t)span, sizeof(float)); /* a padding row's columns */
        float *ring = (float *)malloc(sizeof(float) * (size_t)(kt * slot));
#pragma omp for schedule(static)
        for (int b = 0; b < bands; b++) {
            const int oh0 = b * band, oh1 = oh0 + band < ho ? oh0 + band : ho;
            int held[16];
            for (int j = 0; j < kt; j++) held[j] = -1;
            for (int ti = 0; ti < t; ti++) {
                const float *src[16], *tap[16];
                int k = 0;
                for (int j = 0; j < kt; j++) {
                    const int tj = ti + j - kt / 2;
                    if (tj < 0 || tj >= t) continue;
                    float *conv = ring + (long)(tj % kt) * slot;
                    for (int oh = oh0; held[tj % kt] != tj && oh < oh1; oh++) { /* S's rows of frame tj */
                        const float *in[48]; /* input row q = c * 3 + dh, or NULL for a padding row */
                        for (int q = 0; q < nq; q++) {
                            const int ih = oh * stride - 1 + q % 3;
                            in[q] = ih < 0 || ih >= h ? NULL : x + (q / 3) * plane + ((long)tj * h + ih) * w;
                        }
                        for (int ow0 = 0; ow0 < wo; ow0 += GEMM_MR) {
                            const long col = (long)ow0 * stride - 1; /* the first column the block reads */
                            const int inside = col >= 0 && col + span <= w;
                            const float *rows[48];
                            for (int q = 0; q < nq; q++) {
                                if (!in[q]) {
                                    rows[q] = zero;
                                } else if (inside) {
                                    rows[q] = in[q] + col;
                                } else { /* the row's ends: the columns in range, zeros around them */
                                    float *e = edge + q * span;
                                    for (long i = 0; i < span; i++)
                                        e[i] = col + i >= 0 && col + i < w ? in[q][col + i] : 0.0f;
                                    rows[q] = e;
                                }
                            }
                            stem_block(rows, nq, stride, B, ldb, N, conv + ((long)(oh - oh0) * wo + ow0) * N,
                                       wo - ow0 < GEMM_MR ? wo - ow0 : GEMM_MR);
                        }
                    }
                    held[tj % kt] = tj;
                    src[k] = conv;
                    tap[k++] = wt + (long)j * N;
                }
                temporal_mix(src, tap, k, 0, (long)(oh1 - oh0) * wo, N, 0, bias, POST_RELU, NULL,
                             (void *)element(y, ((long)ti * ho + oh0) * wo * N, bf16_out), bf16_out);
            }
        }
        free(ring);
        free(zero);
        free(edge);
    }
}

/* A D(2+1)D layer up to its last 1x1x1 conv, for one clip, in bands of output rows whose data stay in L2:
 *   y = post(bias + Tm(S(ReLU(x @ Wa + ba)))),  post = Swish when silu_out (as in vov3d_depthwise_st),
 * the same maths as vov3d_gemm then vov3d_depthwise_st, without writing the 1x1x1 conv's output to memory.
 * A task computes `band` output rows of every frame. For each new frame the temporal taps reach, it runs the
 * 1x1x1 conv + ReLU on the input rows the band needs (halo rows are computed by both neighbouring bands) and
 * the 3x3 conv S on them, into a ring of kt frames of S's output; each output frame then mixes the ring's
 * frames (Tm), adds the bias and applies Swish. S before Tm (both per-channel linear maps: the same result):
 * at stride 2, Tm then runs on the output's pixels, a quarter of the input's.
 *   x: (T, H, W, cin), bfloat16 when bf16 == 2; wa (bf16 pairs when bf16) and ba: (ldw) packed as for vov3d_gemm;
 *   wt: (kt, D); ws: (9, D);
 *   bias: (D); y: (T, Ho, Wo, D), bfloat16 when bf16_out (as in vov3d_depthwise_st); band_sum: (bands, T, D)
 *   per-band frame sums of y before Swish, or NULL. */
void vov3d_d2plus1d(const void *x, int cin, const void *wa, int bf16, long ldw, const float *ba, const float *wt,
                    int kt, const float *ws, const float *bias, void *y, float *band_sum, int t, int h, int w, int d,
                    int stride, int band, int silu_out, int bf16_out) {
    const int ho = (h - 1) / stride + 1, wo = (w - 1) / stride + 1;
    const int bands = (ho + band - 1) / band;
    const int rows_in = (band - 1) * stride + 3;
    const long slot = (long)band * wo * d, padded_row = (long)(w + 2) * d, frame = (long)h * w * cin;
    const int post = silu_out == SILU_COARSE ? POST_SILU_COARSE : silu_out ? POST_SILU : POST_NONE;
    if (kt > 16) return; /* the Python wrapper rejects this */
#pragma omp parallel
    {
        float *ring = (float *)malloc(sizeof(float) * (size_t)(kt * slot));
        float *rows = (float *)calloc((size_t)(rows_in * padded_row), sizeof(float)); /* padding columns: zero */
        float *no_bias = (float *)calloc((size_t)d, sizeof(float));
        void *abuf = malloc(sizeof(float) * (size_t)GEMM_MR * (cin + 1)); /* 8 float rows, or 8 bf16 pair rows */
#pragma omp for schedule(static)
        for (int b = 0; b < bands; b++) {
            const int oh0 = b * band, oh1 = oh0 + band < ho ? oh0 + band : ho;
            const int ih0 = oh0 * stride - 1, nin = (oh1 - 1 - oh0) * stride + 3;
            int held[16];
            for (int j = 0; j < kt; j++) held[j] = -1;
            float *bs = band_sum ? band_sum + (long)b * t * d : NULL;
            for (int ti = 0; ti < t; ti++) {
                const float *src[16], *tap[16];
                int k = 0;
                for (int j = 0; j < kt; j++) {
                    const int tj = ti + j - kt / 2;
                    if (tj < 0 || tj >= t) continue;
                    float *conv = ring + (long)(tj % kt) * slot;
                    if (held[tj % kt] != tj) {
                        band_pointwise(element(x, tj * frame, bf16 == 2), cin, wa, bf16, ldw, ba, ih0, nin, h, w, d,
                                       rows, abuf);
                        for (int oh = oh0; oh < oh1; oh++) {
                            const float *r = rows + (long)(oh - oh0) * stride * padded_row;
                            spatial_row(r, r + padded_row, r + 2 * padded_row, ws, no_bias, wo, d, stride,
                                        conv + (long)(oh - oh0) * wo * d, NULL, 0, 0);
                        }
                        held[tj % kt] = tj;
                    }
                    src[k] = conv;
                    tap[k++] = wt + (long)j * d;
                }
                float *fs = bs ? bs + (long)ti * d : NULL;
                if (fs) memset(fs, 0, sizeof(float) * (size_t)d);
                const long at = ((long)ti * ho + oh0) * wo * d;
                temporal_mix(src, tap, k, 0, (long)(oh1 - oh0) * wo, d, 0, bias, post, fs,
                             (void *)element(y, at, bf16_out), bf16_out);
            }
        }
        free(abuf);
        free(no_bias);
        free(rows);
        free(ring);
    }
}

/* Squeeze-excitation's gate of one clip from the per-frame (or per-band) sums of its activations, in one call
 * instead of seven small torch ops: mean = (sum of the rows of sums) * inv_count;
 * gate = sigmoid(relu(mean @ W1 + b1) @ W2 + b2).
 *   sums: (rows, C); w1: (C, CSE), b1: (CSE); w2: (CSE, C), b2: (C); gate: (C). Single-threaded (tiny); the
 * loops run along the matrices' rows, so they vectorise without reordering any sum. */
void vov3d_se_gate(const float *sums, int rows, int c, float inv_count, const float *w1, const float *b1, int cse,
                   const float *w2, const float *b2, float *gate) {
    float mean[c], hidden[cse];
    for (int i = 0; i < c; i++) mean[i] = 0.0f;
    for (int r = 0; r < rows; r++)
        for (int i = 0; i < c; i++) mean[i] += sums[(long)r * c + i];
    for (int j = 0; j < cse; j++) hidden[j] = 0.0f;
    for (int i = 0; i < c; i++)
        for (int j = 0; j < cse; j++) hidden[j] += mean[i] * inv_count * w1[(long)i * cse + j];
    for (int j = 0; j < cse; j++) hidden[j] = hidden[j] + b1[j] > 0.0f ? hidden[j] + b1[j] : 0.0f;
    for (int i = 0; i < c; i++) gate[i] = 0.0f;
    for (int j = 0; j < cse; j++)
        for (int i = 0; i < c; i++) gate[i] += hidden[j] * w2[(long)j * c + i];
    for (int i = 0; i < c; i++) gate[i] = 1.0f / (1.0f + expf(-(gate[i] + b2[i])));
}

/* The weights of one D(2+1)D layer as vov3d_d2plus1d_layer reads them (built by vov3d.ops.inference_kernels.layer_weights). */
typedef struct {
    const void *wa;  /* first 1x1x1 conv: (cin, lda) packed as for vov3d_gemm, bfloat16 pairs when a_bf16 */
    const float *ba;
    long lda;
    int a_bf16;
    const float *wt, *ws, *bias; /* depthwise: (kt, d), (9, d), (d) */
    int kt, stride;
    const float *se_w1, *se_b1, *se_w2, *se_b2; /* squeeze-excitation as vov3d_se_gate takes it; se_w1 NULL: none */
    int cse;
    const void *wc; /* last 1x1x1 conv: (d, ldc) packed, bfloat16 pairs when c_bf16 */
    const float *bc;
    long ldc;
    int c_bf16;
    int cin, d, cout;
    int has_residual; /* add x to the output (cin == cout, stride 1) */
    int silu_out;     /* SILU_NONE/EXACT/COARSE: Swish in the depthwise pass (layers without SE) */
    int dw_bf16;      /* the depthwise output as bfloat16, read by the last product (c_bf16) */
    int in_bf16;      /* x (the input, and the residual) is bfloat16 (a_bf16 and c_bf16) */
    int out_bf16;     /* the output is bfloat16, rounded (c_bf16) */
} vov3d_layer;

/* One D(2+1)D layer of one clip in one call, the same kernel calls vov3d.accel.kernel_network.KernelD2Plus1D would make one
 * by one from Python: the first 1x1x1 conv (+ ReLU) and the depthwise pass, as one vov3d_d2plus1d pass when the
 * conv's output would exceed one_pass_bytes (in `band`-row tasks) or as vov3d_gemm then vov3d_depthwise_st;
 * squeeze-excitation's gate (vov3d_se_gate); the last 1x1x1 conv with SE + Swish on its input, the residual and
 * ReLU (vov3d_gemm). x: (t * h * w, cin) rows; out: (t * ho * wo, cout) rows; each bfloat16 when L says so. The
 * intermediates are malloc'd and freed here, in the order the Python calls allocated and freed them: the
 * allocator hands back the blocks just freed, still in cache, as it does for torch's tensors. */
void vov3d_d2plus1d_layer(const vov3d_layer *L, const void *x, int t, int h, int w, long one_pass_bytes, int band,
                          void *out) {
    const int ho = (h - 1) / L->stride + 1, wo = (w - 1) / L->stride + 1, d = L->d;
    const long npix_in = (long)t * h * w, npix = (long)t * ho * wo;
    float *sums = NULL;
    int sum_rows = 0;
    void *y;
    if (npix_in * d * (long)sizeof(float) > one_pass_bytes) {
        y = malloc((size_t)(npix * d) * (L->dw_bf16 ? 2 : 4));
        if (L->se_w1) {
            sum_rows = (ho + band - 1) / band * t;
            sums = (float *)malloc(sizeof(float) * (size_t)sum_rows * d);
        }
        vov3d_d2plus1d(x, L->cin, L->wa, L->in_bf16 ? 2 : L->a_bf16, L->lda, L->ba, L->wt, L->kt, L->ws, L->bias, y,
                       sums, t, h, w, d, L->stride, band, L->silu_out, L->dw_bf16);
    } else {
        float *a = (float *)malloc(sizeof(float) * (size_t)(npix_in * d));
        const void *ap[1] = {x};
        const long lda[1] = {L->cin};
        const int ka[1] = {L->cin};
        vov3d_gemm(ap, lda, ka, 1, 0, 0, npix_in, L->wa, L->in_bf16 ? 2 : L->a_bf16, L->lda, d, L->ba, NULL, NULL, 0,
                   0, a, d, 0);
        y = malloc((size_t)(npix * d) * (L->dw_bf16 ? 2 : 4));
        if (L->se_w1) {
            sum_rows = t;
            sums = (float *)malloc(sizeof(float) * (size_t)sum_rows * d);
        }
        vov3d_depthwise_st(a, L->wt, L->kt, L->ws, L->bias, y, sums, 1, t, h, w, d, L->stride, 1, L->silu_out,
                           L->dw_bf16);
        free(a);
    }
    float *gate = NULL;
    if (L->se_w1) {
        gate = (float *)malloc(sizeof(float) * (size_t)d);
        vov3d_se_gate(sums, sum_rows, d, 1.0f / (float)npix, L->se_w1, L->se_b1, L->cse, L->se_w2, L->se_b2, gate);
    }
    const void *yp[1] = {y};
    const long ldy[1] = {d};
    const int ky[1] = {d};
    vov3d_gemm(yp, ldy, ky, 1, 0, 0, npix, L->wc, L->dw_bf16 ? 2 : L->c_bf16, L->ldc, L->cout, L->bc, gate,
               L->has_residual ? x : NULL, L->cin, 1, out, L->cout,
               (L->in_bf16 && L->has_residual ? IO_RES_BF16 : 0) | (L->out_bf16 ? IO_OUT_BF16 : 0));
    free(gate);
    free(sums);
    free(y);
}
