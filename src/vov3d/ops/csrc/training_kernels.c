/* Fused CPU kernels for training VoV3D and X3D, forward and backward (see vov3d/ops/training_kernels.py):
 * batch norm in training mode with what follows it (residual, ReLU, squeeze-excitation, Swish), D(2+1)D's
 * temporal depthwise conv with the per-clip sums batch norm needs, its first batch norm + ReLU with the
 * depthwise 1x3x3 conv, and the weight gradient of the 1x1x1 convs.
 *
 * Tensors are float32 and contiguous, channels last: rows of C channels, (N, T, H, W, C) for the convs. Inner loops run over channels (GCC vectorises them, -O3 -march=native). Sums over rows are
 * accumulated in float within a block of rows and in double across blocks, per thread, then added
 * together: their rounding error does not grow with the batch. Threads: OpenMP, over blocks of rows.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "vector.h"

#define BLOCK_ROWS 256 /* rows summed in float before they are added to the double sums */

/* Per-thread double sums: `count` doubles per thread, zeroed; add_sums() adds them into out[]. */
static double *thread_sums(long count) { return (double *)calloc((size_t)count, sizeof(double)); }

static void add_sums(double *out, const double *mine, long count) {
#pragma omp critical(vov3d_train_sums)
    for (long i = 0; i < count; i++) out[i] += mine[i];
}

/* act(v) on `c` floats in place: 0 identity, 1 ReLU, 2 Swish. */
static void act_row(float *v, int c, int act) {
    if (act == 1) {
        for (int j = 0; j < c; j++) v[j] = v[j] < 0.0f ? 0.0f : v[j];
    } else if (act == 2) {
        silu_row(v, c);
    }
}

/* Two per-channel sums over rows: s1[c] = sum_r a[r, c], s2[c] = sum_r b[r, c], where row(r, ctx, a, b, C) adds
 * row r's terms to a and b (C floats each). Blocks of BLOCK_ROWS rows in float, doubles across blocks. */
typedef void (*pair_terms)(long r, const void *ctx, float *restrict a, float *restrict b, int C);

static void pair_sums(long rows, int C, pair_terms row, const void *ctx, double *s1, double *s2) {
    memset(s1, 0, sizeof(double) * (size_t)C);
    memset(s2, 0, sizeof(double) * (size_t)C);
#pragma omp parallel
    {
        double *mine = thread_sums(2L * C);
        float *a1 = (float *)malloc(sizeof(float) * (size_t)C), *a2 = (float *)malloc(sizeof(float) * (size_t)C);
#pragma omp for schedule(static)
        for (long b = 0; b < (rows + BLOCK_ROWS - 1) / BLOCK_ROWS; b++) {
            memset(a1, 0, sizeof(float) * (size_t)C);
            memset(a2, 0, sizeof(float) * (size_t)C);
            const long end = (b + 1) * BLOCK_ROWS < rows ? (b + 1) * BLOCK_ROWS : rows;
            for (long r = b * BLOCK_ROWS; r < end; r++) row(r, ctx, a1, a2, C);
            for (int c = 0; c < C; c++) mine[c] += a1[c], mine[C + c] += a2[c];
        }
        add_sums(s1, mine, C);
        add_sums(s2, mine + C, C);
        free(mine), free(a1), free(a2);
    }
}

struct shifted { const float *x, *shift; };

static void shifted_terms(long r, const void *ctx, float *restrict a, float *restrict b, int C) {
    const struct shifted *k = (const struct shifted *)ctx;
    const float *restrict xr = k->x + r * C, *restrict shift = k->shift;
    for (int c = 0; c < C; c++) {
        const float d = xr[c] - shift[c];
        a[c] += d, b[c] += d * d;
    }
}

/* Per-channel sums of x (rows, C) around its first row: shift[c] = x[0, c], s1[c] = sum_r (x[r, c] - shift[c]),
 * s2[c] = sum_r (x[r, c] - shift[c])^2 (a shift near the mean keeps the variance s2 / rows - (s1 / rows)^2
 * accurate when the mean is large against the spread). */
void vov3d_channel_sums(const float *x, long rows, int C, float *shift, double *s1, double *s2) {
    memcpy(shift, x, sizeof(float) * (size_t)C);
    const struct shifted ctx = {x, shift};
    pair_sums(rows, C, shifted_terms, &ctx, s1, s2);
}

/* y[r, c] = act(x[r, c] * scale[g, c] + shift[g, c] + res[r, c]), g = r / group_rows (one (scale, shift)
 * row per group of rows: per channel with group_rows = rows, per clip and channel for squeeze-excitation);
 * res may be NULL; act: 0 identity, 1 ReLU, 2 Swish. */
void vov3d_affine_act(const float *x, const float *scale, const float *shift, long group_rows, const float *res,
                      long rows, int C, int act, float *y) {
#pragma omp parallel for schedule(static)
    for (long b = 0; b < (rows + BLOCK_ROWS - 1) / BLOCK_ROWS; b++) {
        const long end = (b + 1) * BLOCK_ROWS < rows ? (b + 1) * BLOCK_ROWS : rows;
        for (long r = b * BLOCK_ROWS; r < end; r++) {
            const float *restrict xr = x + r * C, *restrict a = scale + (r / group_rows) * C;
            const float *restrict s = shift + (r / group_rows) * C;
            float *restrict yr = y + r * C;
            if (res) {
                const float *restrict rr = res + r * C;
                for (int c = 0; c < C; c++) yr[c] = fmaf(xr[c], a[c], s[c]) + rr[c];
            } else {
                for (int c = 0; c < C; c++) yr[c] = fmaf(xr[c], a[c], s[c]);
            }
            act_row(yr, C, act);
        }
    }
}

/* g[c] = dy[c] where ReLU passed the gradient (relu), else 0; all of dy without relu. ReLU passed it where
 * the forward output y > 0, or, without a residual (y NULL), where x * scale + shift > 0 recomputed as
 * vov3d_affine_act computed it (one stream less to read). */
static void relu_grad_row(const float *restrict dy, const float *restrict y, const float *restrict x,
                          const float *restrict scale, const float *restrict shift, int C, int relu,
                          float *restrict g) {
    if (!relu) {
        memcpy(g, dy, sizeof(float) * (size_t)C);
    } else if (y) {
        for (int c = 0; c < C; c++) g[c] = y[c] > 0.0f ? dy[c] : 0.0f;
    } else {
        for (int c = 0; c < C; c++) g[c] = fmaf(x[c], scale[c], shift[c]) > 0.0f ? dy[c] : 0.0f;
    }
}

struct bn_grad { const float *dy, *y, *x, *mean, *scale, *shift; int relu; };

static void bn_grad_terms(long r, const void *ctx, float *restrict a, float *restrict b, int C) {
    const struct bn_grad *k = (const struct bn_grad *)ctx;
    const float *restrict xr = k->x + r * C, *restrict mean = k->mean;
    float g[C];
    relu_grad_row(k->dy + r * C, k->y ? k->y + r * C : NULL, xr, k->scale, k->shift, C, k->relu, g);
    for (int c = 0; c < C; c++) a[c] += g[c], b[c] += g[c] * (xr[c] - mean[c]);
}

/* Batch norm + ReLU backward, first pass: g = relu_grad_row(...) (y: the forward output, or NULL; scale,
 * shift: the forward's); sg[c] = sum_r g, sgx[c] = sum_r g * (x - mean[c]). */
void vov3d_bn_act_bwd_sums(const float *dy, const float *y, const float *x, const float *mean, const float *scale,
                           const float *shift, long rows, int C, int relu, double *sg, double *sgx) {
    const struct bn_grad ctx = {dy, y, x, mean, scale, shift, relu};
    pair_sums(rows, C, bn_grad_terms, &ctx, sg, sgx);
}

/* Batch norm + ReLU backward, second pass: g as in the first; dx = g * k[c] + (x - mean[c]) * k2[c] + k0[c]
 * (the batch-norm gradient, its batch-statistics terms in k2 and k0); dres = g when dres is given (the
 * residual's gradient). */
void vov3d_bn_act_bwd_apply(const float *dy, const float *y, const float *x, const float *mean, const float *scale,
                            const float *shift, const float *k, const float *k2, const float *k0, long rows, int C,
                            int relu, float *dx, float *dres) {
#pragma omp parallel
    {
        float *g = (float *)malloc(sizeof(float) * (size_t)C);
#pragma omp for schedule(static)
        for (long b = 0; b < (rows + BLOCK_ROWS - 1) / BLOCK_ROWS; b++) {
            const long end = (b + 1) * BLOCK_ROWS < rows ? (b + 1) * BLOCK_ROWS : rows;
            for (long r = b * BLOCK_ROWS; r < end; r++) {
                const float *restrict xr = x + r * C;
                float *restrict dxr = dx + r * C;
                relu_grad_row(dy + r * C, y ? y + r * C : NULL, xr, scale, shift, C, relu, g);
                for (int c = 0; c < C; c++) dxr[c] = g[c] * k[c] + (xr[c] - mean[c]) * k2[c] + k0[c];
                if (dres) memcpy(dres + r * C, g, sizeof(float) * (size_t)C);
            }
        }
        free(g);
    }
}

/* Backward of vov3d_affine_act without residual, act 1 (ReLU) or 2 (Swish): with z = x * scale[g] +
 * shift[g] and gz = dy * act'(z): dx = gz * scale[g]; dscale[g, c] = sum gz * x, dshift[g, c] = sum gz over
 * the group's rows (doubles, overwritten). */
void vov3d_affine_act_bwd(const float *dy, const float *x, const float *scale, const float *shift, long group_rows,
                          long rows, int C, int act, float *dx, double *dscale, double *dshift) {
    const long groups = (rows + group_rows - 1) / group_rows;
    const long blocks_per_group = (group_rows + BLOCK_ROWS - 1) / BLOCK_ROWS;
    const int C16 = (C + 15) / 16 * 16;
    memset(dscale, 0, sizeof(double) * (size_t)(groups * C));
    memset(dshift, 0, sizeof(double) * (size_t)(groups * C));
#pragma omp parallel
    {
        double *mine = thread_sums(2 * groups * C);
        float *a1 = (float *)malloc(sizeof(float) * (size_t)C), *a2 = (float *)malloc(sizeof(float) * (size_t)C);
        float *z = (float *)calloc((size_t)C16, sizeof(float)), *gz = (float *)calloc((size_t)C16, sizeof(float));
#pragma omp for schedule(static)
        for (long task = 0; task < groups * blocks_per_group; task++) {
            const long g = task / blocks_per_group, r0 = g * group_rows + (task % blocks_per_group) * BLOCK_ROWS;
            const long group_end = (g + 1) * group_rows < rows ? (g + 1) * group_rows : rows;
            const long end = r0 + BLOCK_ROWS < group_end ? r0 + BLOCK_ROWS : group_end;
            const float *restrict a = scale + g * C, *restrict s = shift + g * C;
            memset(a1, 0, sizeof(float) * (size_t)C);
            memset(a2, 0, sizeof(float) * (size_t)C);
            for (long r = r0; r < end; r++) {
                const float *restrict dr = dy + r * C, *restrict xr = x + r * C;
                float *restrict dxr = dx + r * C;
                for (int c = 0; c < C; c++) z[c] = xr[c] * a[c] + s[c];
                if (act == 2) { /* Swish'(z) = sig(z) * (1 + z * (1 - sig(z))) */
                    for (int c = 0; c < C16; c += 16) {
                        const vf16 zv = *(const vf16 *)(z + c), sg = sigmoid16(zv);
                        *(vf16 *)(gz + c) = sg * (1.0f + zv * (1.0f - sg));
                    }
                    for (int c = 0; c < C; c++) gz[c] *= dr[c];
                } else {
                    for (int c = 0; c < C; c++) gz[c] = z[c] > 0.0f ? dr[c] : 0.0f;
                }
                for (int c = 0; c < C; c++) dxr[c] = gz[c] * a[c], a1[c] += gz[c] * xr[c], a2[c] += gz[c];
            }
            for (int c = 0; c < C; c++) mine[g * C + c] += a1[c], mine[(groups + g) * C + c] += a2[c];
        }
        add_sums(dscale, mine, groups * C);
        add_sums(dshift, mine + groups * C, groups * C);
        free(mine), free(a1), free(a2), free(z), free(gz);
    }
}

/* Pixels per task of the temporal kernels: the task's T frames of them in about 256 KB. */
static long temporal_chunk(int t, int C) {
    const long p = (64L * 1024) / ((long)t * C);
    return p < 1 ? 1 : p;
}

/* D(2+1)D's depthwise temporal conv (kt taps, zero padding kt / 2, stride 1, no bias), forward, with the
 * per-clip sums batch norm and squeeze-excitation need:
 *   v[n, t, p, c] = sum_j wt[j, c] * y[n, t + j - kt / 2, p, c]   (y, v: (N, T, HW, C); wt: (kt, C));
 *   s1[n, c] = sum_{t, p} (v - shift[c]), s2[n, c] = sum_{t, p} (v - shift[c])^2 (doubles), around
 *   shift = v[0, 0, 0, :] (see vov3d_channel_sums). One task per clip and chunk of pixels. */
void vov3d_temporal_fwd(const float *y, const float *wt, int kt, int n, int t, long hw, int C, float *v,
                        float *shift, double *s1, double *s2) {
    const long chunk = temporal_chunk(t, C), chunks = (hw + chunk - 1) / chunk;
    for (int c = 0; c < C; c++) shift[c] = 0.0f;
    for (int j = 0; j < kt; j++) { /* v at the first pixel of the first clip, as below */
        const int src = j - kt / 2;
        if (src >= 0 && src < t)
            for (int c = 0; c < C; c++) shift[c] += wt[(long)j * C + c] * y[(long)src * hw * C + c];
    }
    memset(s1, 0, sizeof(double) * (size_t)n * C);
    memset(s2, 0, sizeof(double) * (size_t)n * C);
#pragma omp parallel
    {
        double *mine = thread_sums(2L * n * C);
        float *a1 = (float *)malloc(sizeof(float) * (size_t)C), *a2 = (float *)malloc(sizeof(float) * (size_t)C);
#pragma omp for schedule(static)
        for (long task = 0; task < (long)n * chunks; task++) {
            const long ni = task / chunks, p0 = (task % chunks) * chunk;
            const long p1 = p0 + chunk < hw ? p0 + chunk : hw;
            memset(a1, 0, sizeof(float) * (size_t)C);
            memset(a2, 0, sizeof(float) * (size_t)C);
            for (int ti = 0; ti < t; ti++) {
                float *restrict out = v + ((ni * t + ti) * hw + p0) * C;
                const long len = (p1 - p0) * C;
                memset(out, 0, sizeof(float) * (size_t)len);
                for (int j = 0; j < kt; j++) {
                    const int src = ti + j - kt / 2;
                    if (src < 0 || src >= t) continue;
                    const float *restrict in = y + ((ni * t + src) * hw + p0) * C, *restrict w = wt + (long)j * C;
                    for (long p = 0; p < p1 - p0; p++)
                        for (int c = 0; c < C; c++) out[p * C + c] += w[c] * in[p * C + c];
                }
                for (long p = 0; p < p1 - p0; p++)
                    for (int c = 0; c < C; c++) {
                        const float d = out[p * C + c] - shift[c];
                        a1[c] += d, a2[c] += d * d;
                    }
                if ((ti + 1) % 4 == 0 || ti == t - 1) { /* at most 4 frames of a chunk summed in float */
                    for (int c = 0; c < C; c++) mine[ni * C + c] += a1[c], mine[((long)n + ni) * C + c] += a2[c];
                    memset(a1, 0, sizeof(float) * (size_t)C);
                    memset(a2, 0, sizeof(float) * (size_t)C);
                }
            }
        }
        add_sums(s1, mine, (long)n * C);
        add_sums(s2, mine + (long)n * C, (long)n * C);
        free(mine), free(a1), free(a2);
    }
}

/* Backward of vov3d_temporal_fwd. The gradient reaching v is g = dv + e1[n, c] + e2[n, c] * (v - center[c])
 * (dv from v's consumer; e1 = d s1 and e2 = 2 d s2 from the sums' consumers, center = the forward's shift);
 * then
 *   dy[n, t, p, c] = sum_j wt[j, c] * g[n, t - j + kt / 2, p, c],
 *   dwt[j, c] = sum_{n, t, p} g[n, t, p, c] * y[n, t + j - kt / 2, p, c]   (doubles, overwritten).
 * One task per clip and chunk of pixels: g of the chunk's T frames is formed once in a scratch buffer. */
void vov3d_temporal_bwd(const float *dv, const float *v, const float *e1, const float *e2, const float *center,
                        const float *y, const float *wt, int kt, int n, int t, long hw, int C, float *dy,
                        double *dwt) {
    const long chunk = temporal_chunk(t, C), chunks = (hw + chunk - 1) / chunk;
    memset(dwt, 0, sizeof(double) * (size_t)kt * C);
#pragma omp parallel
    {
        double *mine = thread_sums((long)kt * C);
        float *acc = (float *)malloc(sizeof(float) * (size_t)kt * C);
        float *g = (float *)malloc(sizeof(float) * (size_t)(t * chunk * C));
#pragma omp for schedule(static)
        for (long task = 0; task < (long)n * chunks; task++) {
            const long ni = task / chunks, p0 = (task % chunks) * chunk;
            const long np = (p0 + chunk < hw ? p0 + chunk : hw) - p0, len = np * C;
            const float *restrict a = e1 + ni * C, *restrict b = e2 + ni * C;
            for (int ti = 0; ti < t; ti++) {
                const float *restrict dr = dv + ((ni * t + ti) * hw + p0) * C, *restrict vr = v + ((ni * t + ti) * hw + p0) * C;
                float *restrict gr = g + ti * len;
                for (long p = 0; p < np; p++)
                    for (int c = 0; c < C; c++)
                        gr[p * C + c] = dr[p * C + c] + a[c] + b[c] * (vr[p * C + c] - center[c]);
            }
            memset(acc, 0, sizeof(float) * (size_t)kt * C);
            for (int ti = 0; ti < t; ti++) {
                float *restrict out = dy + ((ni * t + ti) * hw + p0) * C;
                const float *restrict yr = y + ((ni * t + ti) * hw + p0) * C;
                memset(out, 0, sizeof(float) * (size_t)len);
                for (int j = 0; j < kt; j++) {
                    const int src = ti - j + kt / 2; /* the output frame that tap j of frame ti fed */
                    if (src < 0 || src >= t) continue;
                    const float *restrict gr = g + src * len, *restrict w = wt + (long)j * C;
                    float *restrict aj = acc + (long)j * C;
                    for (long p = 0; p < np; p++)
                        for (int c = 0; c < C; c++) {
                            out[p * C + c] += w[c] * gr[p * C + c];
                            aj[c] += gr[p * C + c] * yr[p * C + c];
                        }
                }
            }
            for (long i = 0; i < (long)kt * C; i++) mine[i] += acc[i];
        }
        add_sums(dwt, mine, (long)kt * C);
        free(mine), free(acc), free(g);
    }
}

/* dw[i, j] += sum_{r < nr} x[r, i0 + i] * g[r, j0 + j] for the mr (<= 8) rows i and 16 * nv + 8 * has8
 * columns j of one tile (the weight gradient of a 1x1x1 conv, over a chunk of rows): the tile's sums stay
 * in registers while the chunk's rows stream by. nv, has8 are constants at each call (always inlined). */
static inline __attribute__((always_inline)) void tn_tile(const float *x, int K, const float *g, int N, long nr,
                                                         int i0, int mr, int j0, int nv, int has8, float *dw) {
    vf16 acc0[8], acc1[8];
    vf8 acc8[8];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) acc0[i] = acc1[i] = (vf16){0}, acc8[i] = (vf8){0};
    for (long r = 0; r < nr; r++) {
        const float *gr = g + r * N + j0, *xr = x + r * K + i0;
        const vf16 g0 = nv > 0 ? *(const vf16 *)gr : (vf16){0};
        const vf16 g1 = nv > 1 ? *(const vf16 *)(gr + 16) : (vf16){0};
        const vf8 g8 = has8 ? *(const vf8 *)(gr + 16 * nv) : (vf8){0};
#pragma GCC unroll 8
        for (int i = 0; i < 8; i++) {
            if (i >= mr) break;
            const float a = xr[i];
            if (nv > 0) acc0[i] += a * g0;
            if (nv > 1) acc1[i] += a * g1;
            if (has8) acc8[i] += a * g8;
        }
    }
    for (int i = 0; i < mr; i++) {
        float *o = dw + (long)(i0 + i) * N + j0;
        if (nv > 0) *(vf16 *)o += acc0[i];
        if (nv > 1) *(vf16 *)(o + 16) += acc1[i];
        if (has8) *(vf8 *)(o + 16 * nv) += acc8[i];
    }
}

/* The weight gradient of a 1x1x1 conv, x^T g: dw[i, j] = sum_r x[r, i] * g[r, j] (x: (rows, K), g: (rows, N),
 * dw: (K, N), overwritten). MKL runs these tall products (rows in the hundreds of thousands, K and N of
 * 24-384) at 50-125 GFLOP/s on two cores (benchmarks/kernels.py --training-only); here each thread sums
 * chunks of rows that stay in L2 into its own (K, N) partial, tile by tile in registers, and the partials
 * are added at the end. */
void vov3d_gemm_tn(const float *x, const float *g, long rows, int K, int N, float *dw) {
    const long chunk = (64L * 1024) / (K + N) < 32 ? 32 : (64L * 1024) / (K + N);
    const long chunks = (rows + chunk - 1) / chunk;
    memset(dw, 0, sizeof(float) * (size_t)K * N);
#pragma omp parallel
    {
        float *mine = (float *)calloc((size_t)K * N, sizeof(float));
#pragma omp for schedule(static)
        for (long b = 0; b < chunks; b++) {
            const long r0 = b * chunk, nr = r0 + chunk < rows ? chunk : rows - r0;
            const float *xb = x + r0 * K, *gb = g + r0 * N;
            for (int i0 = 0; i0 < K; i0 += 8) {
                const int mr = K - i0 < 8 ? K - i0 : 8;
                int j = 0;
                for (; j + 32 <= N; j += 32) tn_tile(xb, K, gb, N, nr, i0, mr, j, 2, 0, mine);
                if (N - j >= 24 && N - j < 32) tn_tile(xb, K, gb, N, nr, i0, mr, j, 1, 1, mine), j += 24;
                for (; j + 16 <= N; j += 16) tn_tile(xb, K, gb, N, nr, i0, mr, j, 1, 0, mine);
                for (; j + 8 <= N; j += 8) tn_tile(xb, K, gb, N, nr, i0, mr, j, 0, 1, mine);
                for (; j < N; j++) /* fewer than 8 columns left */
                    for (int i = 0; i < mr; i++) {
                        float s = 0.0f;
                        for (long r = 0; r < nr; r++) s += xb[r * K + i0 + i] * gb[r * N + j];
                        mine[(long)(i0 + i) * N + j] += s;
                    }
            }
        }
#pragma omp critical(vov3d_train_sums)
        for (long i = 0; i < (long)K * N; i++) dw[i] += mine[i];
        free(mine);
    }
}

/* One tap of the depthwise 3x3 backward over C channels: dx += w * dy, dw += dy * x. */
static inline void dw3x3_tap(const float *restrict dy, const float *restrict x, const float *restrict w,
                             float *restrict dx, float *restrict dw, int C) {
    for (int c = 0; c < C; c++) dx[c] += w[c] * dy[c], dw[c] += dy[c] * x[c];
}

/* The same backward at stride 1 for one frame, C a multiple of 16, in gather form: 16 channels at a time,
 * their 9 taps and 9 weight-gradient sums in registers while the frame's pixels go by,
 *   dx[i, j] = sum_{kh, kw} w[kh, kw] * dy[i + 1 - kh, j + 1 - kw],  dw[kh, kw] += dy[i, j] * x[i + kh - 1, j + kw - 1],
 * rows outside the frame read from `zero` (a row of zeros), columns outside it only in the first and
 * last columns (checked there). About 2.5x faster than the scatter form. Adds the sums to acc (9, C). */
static void dw3x3_bwd_frame_s1(const float *xf, const float *dyf, const float *ws, int h, int w, int C,
                               const float *zero, float *dxf, float *acc) {
    const long row = (long)w * C;
    for (int c = 0; c < C; c += 16) {
#define LD(p, col) (*(const vf16 *)((p) + (long)(col) * C + c))
#define LDC(p, col) ((col) < 0 || (col) >= w ? (vf16){0} : LD(p, col))
        const vf16 w0 = LD(ws, 0), w1 = LD(ws, 1), w2 = LD(ws, 2), w3 = LD(ws, 3), w4 = LD(ws, 4), w5 = LD(ws, 5);
        const vf16 w6 = LD(ws, 6), w7 = LD(ws, 7), w8 = LD(ws, 8);
        vf16 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, a4 = {0}, a5 = {0}, a6 = {0}, a7 = {0}, a8 = {0};
        for (int i = 0; i < h; i++) {
            const float *dm = i > 0 ? dyf + (i - 1) * row : zero, *d0 = dyf + i * row;
            const float *dp = i < h - 1 ? dyf + (i + 1) * row : zero;
            const float *xm = i > 0 ? xf + (i - 1) * row : zero, *x0 = xf + i * row;
            const float *xp = i < h - 1 ? xf + (i + 1) * row : zero;
            float *out = dxf + i * row;
#define PIXEL(L)                                                                                                   \
    do {                                                                                                           \
        const vf16 d = LD(d0, j);                                                                                  \
        *(vf16 *)(out + (long)j * C + c) = w0 * L(dp, j + 1) + w1 * L(dp, j) + w2 * L(dp, j - 1) +                 \
                                           w3 * L(d0, j + 1) + w4 * d + w5 * L(d0, j - 1) + w6 * L(dm, j + 1) +    \
                                           w7 * L(dm, j) + w8 * L(dm, j - 1);                                      \
        a0 += d * L(xm, j - 1), a1 += d * L(xm, j), a2 += d * L(xm, j + 1);                                        \
        a3 += d * L(x0, j - 1), a4 += d * L(x0, j), a5 += d * L(x0, j + 1);                                        \
        a6 += d * L(xp, j - 1), a7 += d * L(xp, j), a8 += d * L(xp, j + 1);                                        \
    } while (0)
            int j = 0;
            PIXEL(LDC);
            for (j = 1; j < w - 1; j++) PIXEL(LD);
            if (w > 1) {
                j = w - 1;
                PIXEL(LDC);
            }
#undef PIXEL
        }
        *(vf16 *)(acc + 0 * C + c) += a0, *(vf16 *)(acc + 1 * C + c) += a1, *(vf16 *)(acc + 2 * C + c) += a2;
        *(vf16 *)(acc + 3 * C + c) += a3, *(vf16 *)(acc + 4 * C + c) += a4, *(vf16 *)(acc + 5 * C + c) += a5;
        *(vf16 *)(acc + 6 * C + c) += a6, *(vf16 *)(acc + 7 * C + c) += a7, *(vf16 *)(acc + 8 * C + c) += a8;
#undef LD
#undef LDC
    }
}

/* u = ReLU(x * scale + shift) over `pixels` rows of C channels (batch norm + ReLU, as vov3d_affine_act). */
static void bn_relu_rows(const float *restrict x, const float *restrict scale, const float *restrict shift,
                         long pixels, int C, float *restrict u) {
    for (long p = 0; p < pixels; p++)
        for (int c = 0; c < C; c++) {
            const float v = fmaf(x[p * C + c], scale[c], shift[c]);
            u[p * C + c] = v < 0.0f ? 0.0f : v;
        }
}

/* The depthwise 3x3 conv (padding 1, stride `stride`, no bias) of one (H, W, C) frame u into y (Ho, Wo, C):
 * y[oh, ow] = sum_{kh, kw} ws[kh * 3 + kw] * u[oh * stride + kh - 1, ow * stride + kw - 1]. With whole
 * vectors of channels, 16 at a time with the 9 taps in registers; else channel by channel. */
static void dw3x3_fwd_frame(const float *u, const float *ws, int h, int w, int C, int stride, float *y) {
    const int ho = (h - 1) / stride + 1, wo = (w - 1) / stride + 1;
    if (C % 16) {
        for (int oh = 0; oh < ho; oh++)
            for (int ow = 0; ow < wo; ow++) {
                float *restrict o = y + ((long)oh * wo + ow) * C;
                memset(o, 0, sizeof(float) * (size_t)C);
                for (int kh = 0; kh < 3; kh++)
                    for (int kw = 0; kw < 3; kw++) {
                        const int ih = oh * stride + kh - 1, iw = ow * stride + kw - 1;
                        if (ih < 0 || ih >= h || iw < 0 || iw >= w) continue;
                        const float *restrict in = u + ((long)ih * w + iw) * C, *restrict wk = ws + (kh * 3 + kw) * (long)C;
                        for (int c = 0; c < C; c++) o[c] += wk[c] * in[c];
                    }
            }
        return;
    }
    for (int c = 0; c < C; c += 16) {
        vf16 wv[9];
        for (int k = 0; k < 9; k++) wv[k] = *(const vf16 *)(ws + (long)k * C + c);
        for (int oh = 0; oh < ho; oh++)
            for (int ow = 0; ow < wo; ow++) {
                vf16 acc = {0};
                for (int kh = 0; kh < 3; kh++) {
                    const int ih = oh * stride + kh - 1;
                    if (ih < 0 || ih >= h) continue;
                    for (int kw = 0; kw < 3; kw++) {
                        const int iw = ow * stride + kw - 1;
                        if (iw < 0 || iw >= w) continue;
                        acc += wv[kh * 3 + kw] * *(const vf16 *)(u + ((long)ih * w + iw) * C + c);
                    }
                }
                *(vf16 *)(y + ((long)oh * wo + ow) * C + c) = acc;
            }
    }
}

/* Batch norm + ReLU, then D(2+1)D's depthwise 1x3x3 conv, forward: y = dw3x3(ReLU(x * scale + shift)) over
 * frames of (H, W, C), the ReLU's output u formed frame by frame in cache and never written out. */
void vov3d_bn_relu_dw3x3_fwd(const float *x, const float *scale, const float *shift, const float *ws, long frames,
                             int h, int w, int C, int stride, float *y) {
    const int ho = (h - 1) / stride + 1, wo = (w - 1) / stride + 1;
    const long frame = (long)h * w * C, oframe = (long)ho * wo * C;
#pragma omp parallel
    {
        float *u = (float *)malloc(sizeof(float) * (size_t)frame);
#pragma omp for schedule(static)
        for (long f = 0; f < frames; f++) {
            bn_relu_rows(x + f * frame, scale, shift, (long)h * w, C, u);
            dw3x3_fwd_frame(u, ws, h, w, C, stride, y + f * oframe);
        }
        free(u);
    }
}

/* The depthwise 3x3 backward of one frame (see vov3d_bn_relu_dw3x3_bwd): dx from dy, the weight gradient
 * added to acc (9, C); at stride 1 with whole vectors of channels dw3x3_bwd_frame_s1, else each output pixel
 * scattered to its 9 taps while the frame's rows stay in cache. `zero`: a zeroed row, for the former. */
static void dw3x3_bwd_frame(const float *xf, const float *dyf, const float *ws, int h, int w, int C, int stride,
                            const float *zero, float *dxf, float *acc) {
    if (stride == 1 && C % 16 == 0) {
        dw3x3_bwd_frame_s1(xf, dyf, ws, h, w, C, zero, dxf, acc);
        return;
    }
    const int ho = (h - 1) / stride + 1, wo = (w - 1) / stride + 1;
    memset(dxf, 0, sizeof(float) * (size_t)h * w * C);
    for (int oh = 0; oh < ho; oh++)
        for (int kh = 0; kh < 3; kh++) {
            const int ih = oh * stride + kh - 1;
            if (ih < 0 || ih >= h) continue;
            for (int ow = 0; ow < wo; ow++)
                for (int kw = 0; kw < 3; kw++) {
                    const int iw = ow * stride + kw - 1;
                    if (iw < 0 || iw >= w) continue;
                    const long at = ((long)ih * w + iw) * C;
                    dw3x3_tap(dyf + ((long)oh * wo + ow) * C, xf + at, ws + (kh * 3 + kw) * (long)C, dxf + at,
                              acc + (kh * 3 + kw) * (long)C, C);
                }
        }
}

/* Backward of vov3d_bn_relu_dw3x3_fwd, up to the batch norm's own backward: with u = ReLU(x * scale + shift)
 * formed again frame by frame,
 *   g[f, ih, iw, c] = (u > 0) * sum of ws[kh, kw, c] * dy[f, oh, ow, c] over ih = oh * stride + kh - 1, ...
 *   (the gradient reaching the batch norm's output, through the conv and the ReLU),
 *   dws[k, c] = sum dy * u at tap k; sg[c] = sum g, sgx[c] = sum g * (x - mean[c])   (doubles, overwritten),
 * the sums vov3d_bn_act_bwd_apply then needs (with relu 0: g is already masked) to give dx. */
void vov3d_bn_relu_dw3x3_bwd(const float *x, const float *scale, const float *shift, const float *mean,
                             const float *dy, const float *ws, long frames, int h, int w, int C, int stride, float *g,
                             double *dws, double *sg, double *sgx) {
    const int ho = (h - 1) / stride + 1, wo = (w - 1) / stride + 1;
    const long frame = (long)h * w * C, oframe = (long)ho * wo * C;
    memset(dws, 0, sizeof(double) * 9 * (size_t)C);
    memset(sg, 0, sizeof(double) * (size_t)C);
    memset(sgx, 0, sizeof(double) * (size_t)C);
#pragma omp parallel
    {
        double *mine = thread_sums(11L * C); /* dws, then sg, then sgx */
        float *acc = (float *)malloc(sizeof(float) * 11 * (size_t)C);
        float *u = (float *)malloc(sizeof(float) * (size_t)frame);
        float *zero = (float *)calloc((size_t)w * C, sizeof(float));
#pragma omp for schedule(static)
        for (long f = 0; f < frames; f++) {
            const float *xf = x + f * frame;
            float *gf = g + f * frame;
            memset(acc, 0, sizeof(float) * 11 * (size_t)C);
            bn_relu_rows(xf, scale, shift, (long)h * w, C, u);
            dw3x3_bwd_frame(u, dy + f * oframe, ws, h, w, C, stride, zero, gf, acc);
            float *restrict a1 = acc + 9L * C, *restrict a2 = acc + 10L * C;
            for (long p = 0; p < (long)h * w; p++)
                for (int c = 0; c < C; c++) {
                    const float gv = u[p * C + c] > 0.0f ? gf[p * C + c] : 0.0f;
                    gf[p * C + c] = gv;
                    a1[c] += gv, a2[c] += gv * (xf[p * C + c] - mean[c]);
                }
            for (long i = 0; i < 11L * C; i++) mine[i] += acc[i];
        }
        add_sums(dws, mine, 9L * C);
        add_sums(sg, mine + 9L * C, C);
        add_sums(sgx, mine + 10L * C, C);
        free(mine), free(acc), free(u), free(zero);
    }
}
