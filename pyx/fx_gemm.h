/*
 * fx_gemm.h: the three products of the fused linear panel sweep
 * (pyx/_linear.pyx, design note c) as register-tiled loops over the caller's
 * buffers, for float and double (fx_gemm_impl.h is the template):
 *
 *     fx_logits:      panel[p, c]  = bias[c] + sum_d x[p, d] weight[c, d]
 *     fx_weight_grad: dweight[c, d] += sum_p g[p, c] x[p, d]
 *     fx_input_grad:  dx[p, d]      += sum_c g[p, c] weight[c, d]
 *
 * Why not BLAS: gemm packs both operands on every call, and the panel sweep
 * makes three calls per panel and class block, so BLAS reorders all of
 * weight twice per panel of rows (perf: ~14 % of the gradient at
 * 2048 x 1024 x 128256).  Here each product is a sum of rank-1 updates of
 * an MR x NR register tile: NR consecutive values of a row of one operand
 * (the vector operand: x's or weight's hidden values, or the transposed x
 * panel xt) times a broadcast value of the other, both read where they lie
 * and blocked so that a tile's broadcast values stay in L1 and the vector
 * rows its neighbours share in L2 (fx_product).  The only copy is xt, once
 * per panel (O(panel rows x hidden)).
 *
 * Built only with GCC/Clang vector extensions at the AVX-512 level
 * (FX_GEMM = 1); elsewhere FX_GEMM = 0 and _linear.pyx calls BLAS.  The
 * tile is MR = 6 rows x 4 vectors (64 floats, 32 doubles): 24 accumulators,
 * 4 for the row of the vector operand, of the 32 AVX-512 registers.
 * Measured on a 2-core AMD EPYC (Zen 4), float32, 201 rows x 32000 classes
 * x 1024 hidden in blocks of 1032 classes, 2 threads, GFLOP/s (logits, dweight, dx),
 * with the first version of fx_product:
 *     12 x 2 vectors  165 182 179      6 x 4 vectors  166 187 190
 *     8 x 3 vectors   179 175 180      (peak: 2 x 117, OpenBLAS's large sgemm ~200)
 * With the blocking, edges and prefetches of fx_product now (best of 9,
 * 2026-11-24), at 204 rows x 1024 hidden: 198 197 197 (was 167 177 190:
 * 204 rows cost 256 rows of logits), at 93 rows x 512 hidden: 178 188 185
 * (was 143 145 154); OpenBLAS's three gemm calls of 2048 x 1024 x 32000 in
 * the same minutes: 202 203 201.  The AVX2 build of the same loops (16
 * registers: 6 x 2 vectors) reached 51-55 GFLOP/s in the gradient products
 * on one thread, below OpenBLAS.
 */
#ifndef FX_GEMM_H
#define FX_GEMM_H

#include <Python.h>   /* Py_ssize_t */
#include <string.h>   /* memcpy */

/* bytes of a vector: the logits' vectors hold consecutive rows of xt, so a
 * panel of rows that is not a whole number of vectors computes padding */
#define FX_GEMM_BYTES 64

#if (defined(__GNUC__) || defined(__clang__)) && defined(__AVX512F__)
#define FX_GEMM 1
#define FX_GEMM_MR 6
#define FX_GEMM_NV 4
#else
#define FX_GEMM 0
#endif

/* values of float in a tile row (NR; half as many doubles): xt's rows are
 * padded to a multiple of it, and below it hidden values _linear.pyx calls
 * BLAS (a tile would be mostly padding) */
#define FX_GEMM_PAD 64

#if FX_GEMM
#define FX_T float
#define FX_SUF f
#include "fx_gemm_impl.h"
#undef FX_T
#undef FX_SUF

#define FX_T double
#define FX_SUF d
#include "fx_gemm_impl.h"
#undef FX_T
#undef FX_SUF

#else   /* never called: _linear.pyx tests FX_GEMM first */
#define FX_GEMM_STUBS(T, SUF)                                                              \
static void fx_pack_xt_##SUF(Py_ssize_t n_rows, Py_ssize_t n_hidden, const T *x,           \
                             Py_ssize_t ld_x, T *xt, Py_ssize_t ld_xt) {}                  \
static void fx_logits_##SUF(Py_ssize_t n_cls, Py_ssize_t n_rows, Py_ssize_t n_hidden,      \
                            const T *w, Py_ssize_t ld_w, const T *xt, Py_ssize_t ld_xt,    \
                            const T *bias, T *panel, Py_ssize_t ld_panel) {}               \
static void fx_weight_grad_##SUF(Py_ssize_t n_cls, Py_ssize_t n_rows, Py_ssize_t n_hidden, \
                                 const T *g, Py_ssize_t ld_g, const T *x, Py_ssize_t ld_x, \
                                 T *dw, Py_ssize_t ld_dw) {}                               \
static void fx_input_grad_##SUF(Py_ssize_t n_rows, Py_ssize_t n_cls, Py_ssize_t n_hidden,  \
                                const T *g, Py_ssize_t ld_g, const T *w, Py_ssize_t ld_w,  \
                                T *dx, Py_ssize_t ld_dx) {}
FX_GEMM_STUBS(float, f)
FX_GEMM_STUBS(double, d)
#endif

#endif /* FX_GEMM_H */
