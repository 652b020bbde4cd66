/*
 * Template of fx_gemm.h, instantiated for float (FX_SUF = f) and double
 * (FX_SUF = d).  Include only from fx_gemm.h.
 */

#define FX_CAT_(a, b) a##_##b
#define FX_CAT(a, b) FX_CAT_(a, b)
#define FX_FN(name) FX_CAT(name, FX_SUF)
#define FX_VEC FX_FN(fx_vec)
#define NL ((Py_ssize_t)(FX_GEMM_BYTES / sizeof(FX_T)))   /* values per vector */
#define NR (FX_GEMM_NV * NL)                              /* tile columns */
#define MR FX_GEMM_MR                                     /* tile rows */

/* aligned(sizeof(FX_T)): a vector may be loaded from any value's address */
typedef FX_T FX_VEC __attribute__((vector_size(FX_GEMM_BYTES), aligned(sizeof(FX_T))));

/*
 * tile[i][0:nv * NL] = sum_{k < n_k} a[i * ars + k * acs] * b[k * ldb + 0:nv * NL],
 * for i < mr (mr <= MR rows, nv <= FX_GEMM_NV vectors; the rest of tile is
 * left as is, and A's rows from mr on are not read).  Inlined into callers
 * that fix mr, nv and ars or acs to 1, so that the mr scalars of a step
 * are loaded from constant offsets.
 */
static inline __attribute__((always_inline)) void
FX_FN(fx_tile)(Py_ssize_t n_k, const FX_T *a, Py_ssize_t ars, Py_ssize_t acs,
               const FX_T *b, Py_ssize_t ldb, FX_T tile[MR][NR], const int mr, const int nv)
{
    FX_VEC acc[MR][FX_GEMM_NV];
    Py_ssize_t i, k, v;
    for (i = 0; i < mr; i++)
        for (v = 0; v < nv; v++)
            acc[i][v] = (FX_VEC){0};
    for (k = 0; k < n_k; k++) {
        FX_VEC row[FX_GEMM_NV];
#pragma GCC unroll 8
        for (v = 0; v < nv; v++)
            row[v] = *(const FX_VEC *)(b + k * ldb + v * NL);
#pragma GCC unroll 16
        for (i = 0; i < mr; i++) {
            const FX_T s = a[i * ars + k * acs];
#pragma GCC unroll 8
            for (v = 0; v < nv; v++)
                acc[i][v] += s * row[v];
        }
    }
    for (i = 0; i < mr; i++)
        for (v = 0; v < nv; v++)
            memcpy(&tile[i][v * NL], &acc[i][v], sizeof(FX_VEC));
}

/* fx_tile with its rows or its vectors chosen at run time: a full tile
 * (mr = MR, nv = FX_GEMM_NV), the last strip of a padded B (mr = MR,
 * 1 <= nv < FX_GEMM_NV) or A's last rows (1 <= mr < MR, nv = FX_GEMM_NV) */
static inline __attribute__((always_inline)) void
FX_FN(fx_tile_edge)(Py_ssize_t n_k, const FX_T *a, Py_ssize_t ars, Py_ssize_t acs,
                    const FX_T *b, Py_ssize_t ldb, FX_T tile[MR][NR], int mr, int nv)
{
#define FX_TILE(r, v) FX_FN(fx_tile)(n_k, a, ars, acs, b, ldb, tile, r, v); break
    if (mr == MR) {
        switch (nv) {
        case 1: FX_TILE(MR, 1);
        case 2: FX_TILE(MR, 2);
        case 3: FX_TILE(MR, 3);
        default: FX_TILE(MR, FX_GEMM_NV);
        }
    } else {
        switch (mr) {
        case 1: FX_TILE(1, FX_GEMM_NV);
        case 2: FX_TILE(2, FX_GEMM_NV);
        case 3: FX_TILE(3, FX_GEMM_NV);
        case 4: FX_TILE(4, FX_GEMM_NV);
        default: FX_TILE(5, FX_GEMM_NV);
        }
    }
#undef FX_TILE
}

/*
 * Stores rows [i_from, i_end) and columns [j_from, j_end) of a tile whose
 * (0, 0) is out's (0, 0):
 *     out[i * ldo + j] += tile[i][j]                (transposed == 0), or
 *     out[j * ldo + i]  = tile[i][j] + bias[i]      (transposed == 1; bias may be NULL).
 */
static inline void FX_FN(fx_store)(FX_T tile[MR][NR], Py_ssize_t i_from, Py_ssize_t i_end,
                                   Py_ssize_t j_from, Py_ssize_t j_end,
                                   FX_T *out, Py_ssize_t ldo, int transposed, const FX_T *bias)
{
    Py_ssize_t i, j;
    if (transposed) {
        for (j = j_from; j < j_end; j++)
            for (i = i_from; i < i_end; i++)
                out[j * ldo + i] = tile[i][j] + (bias ? bias[i] : 0);
    } else if (i_end == MR && j_from == 0 && j_end == NR) {
        for (i = i_from; i < MR; i++)   /* NR constant: one vector add per half row */
            for (j = 0; j < NR; j++)
                out[i * ldo + j] += tile[i][j];
    } else {
        for (i = i_from; i < i_end; i++)
            for (j = j_from; j < j_end; j++)
                out[i * ldo + j] += tile[i][j];
    }
}

/*
 * Asks for the lines of a tile's part of out (fx_store's layout) before
 * they are stored to: dweight's rows (and the panel, for the logits) come
 * from memory, and the store would otherwise wait for them.  fx_product
 * asks for the logits' tile while it is computed, and for dweight's and
 * dx's a row of tiles ahead: measured at 93 rows x 32000 classes x 512
 * hidden, dweight 68-70 -> 74-80 GFLOP/s on one thread and 149-161 ->
 * 186 on two.
 */
static inline void FX_FN(fx_prefetch_out)(const FX_T *out, Py_ssize_t ldo, int transposed)
{
    const Py_ssize_t line = 64 / sizeof(FX_T);
    Py_ssize_t i, j;
    if (transposed) {
        for (j = 0; j < NR; j++) {
            __builtin_prefetch(out + j * ldo, 1, 3);
            __builtin_prefetch(out + j * ldo + MR - 1, 1, 3);
        }
    } else {
        for (i = 0; i < MR; i++)
            for (j = 0; j < NR; j += line)
                __builtin_prefetch(out + i * ldo + j, 1, 3);
    }
}

/* steps of A and B a narrow tile copies at a time (fx_product_narrow) */
#define KC 64
/* steps of k fx_product takes at a time when it adds into out: 256, so
 * that a panel of up to 256 rows adds into dweight once (dweight comes from
 * memory; dx is in L2) */
#define KB 256
/* bytes of B (steps x columns) that fx_product's tiles share while it walks
 * down A: half of a 1 MiB L2 */
#define L2_B_BYTES (256 << 10)

/*
 * fx_product for m < MR or (n < NR, B not padded): each tile's rows of A
 * and columns of B are copied, KC steps at a time, into zero-padded
 * MR x KC and KC x NR buffers, so the same register tile runs.
 */
static void FX_FN(fx_product_narrow)(Py_ssize_t m, Py_ssize_t n, Py_ssize_t n_k,
                                     const FX_T *a, Py_ssize_t ars, Py_ssize_t acs,
                                     const FX_T *b, Py_ssize_t ldb,
                                     FX_T *out, Py_ssize_t ldo, int transposed, const FX_T *bias)
{
    FX_T a_pad[KC][MR] __attribute__((aligned(64)));
    FX_T b_pad[KC][NR] __attribute__((aligned(64)));
    FX_T part[MR][NR] __attribute__((aligned(64)));
    FX_T tile[MR][NR] __attribute__((aligned(64)));
    Py_ssize_t i0, j0, k0, i, j, k, mi, nj, kn;
    for (j0 = 0; j0 < n; j0 += NR) {
        nj = n - j0 < NR ? n - j0 : NR;
        for (i0 = 0; i0 < m; i0 += MR) {
            mi = m - i0 < MR ? m - i0 : MR;
            memset(tile, 0, sizeof(tile));
            for (k0 = 0; k0 < n_k; k0 += KC) {
                kn = n_k - k0 < KC ? n_k - k0 : KC;
                for (k = 0; k < kn; k++) {
                    for (i = 0; i < MR; i++)
                        a_pad[k][i] = i < mi ? a[(i0 + i) * ars + (k0 + k) * acs] : 0;
                    for (j = 0; j < NR; j++)
                        b_pad[k][j] = j < nj ? b[(k0 + k) * ldb + j0 + j] : 0;
                }
                FX_FN(fx_tile)(kn, &a_pad[0][0], 1, MR, &b_pad[0][0], NR, part, MR, FX_GEMM_NV);
                for (i = 0; i < MR; i++)
                    for (j = 0; j < NR; j++)
                        tile[i][j] += part[i][j];
            }
            FX_FN(fx_store)(tile, 0, mi, 0, nj,
                            transposed ? out + j0 * ldo + i0 : out + i0 * ldo + j0, ldo,
                            transposed, bias ? bias + i0 : NULL);
        }
    }
}

/*
 * The product P = A . B, A (m x n_k) with A[i, k] = a[i * ars + k * acs] and
 * ars == 1 or acs == 1, B (n_k x n) with rows ldb apart and contiguous, into
 * out as fx_store says.  Both operands are read where they lie.
 * b_padded: B's rows may be read up to the next multiple of NR past n.
 *
 * Blocking: k in equal chunks of at most KB steps when out is added to (the
 * transposed store of the logits takes k in one pass: it cannot add
 * cheaply); within a chunk, B's columns in blocks of L2_B_BYTES, and for
 * each block, A's rows MR at a time (their MR x kb values stay in L1) times
 * the block's strips (in L2).  out is walked row by row, a stream the
 * prefetchers follow.  Measured against the order the other way round
 * (B's strips outer, copied into 64 KiB buffers), 2 threads, 32000 classes,
 * GFLOP/s: dweight 133-151 -> 159-180 at 93 rows x 512 hidden and
 * 172-181 -> 181-189 at 204 rows x 1024; dx 149-154 -> 158-160 and
 * 174-180 -> 185-188.
 *
 * Edges: A's last rows take a tile of that many rows, and a padded B's
 * last strip as few vectors as cover its columns (the panel's rows are
 * rarely a multiple of NR, nor of MR: 86 rows cost 96 x 90 before).  An
 * unpadded B's last strip, and A's last rows on a padded B's last strip,
 * are instead a full tile moved back to end at the edge, overlapping its
 * neighbour, that stores only the part not yet stored.  Products narrower
 * than one tile take fx_product_narrow.
 */
static void FX_FN(fx_product)(Py_ssize_t m, Py_ssize_t n, Py_ssize_t n_k,
                              const FX_T *a, Py_ssize_t ars, Py_ssize_t acs,
                              const FX_T *b, Py_ssize_t ldb, int b_padded,
                              FX_T *out, Py_ssize_t ldo, int transposed, const FX_T *bias)
{
    FX_T tile[MR][NR] __attribute__((aligned(64)));
    Py_ssize_t n_chunks, kb_max, k0, kb, jn, jc, j0, i0, ib, jb, j_skip, j_end, k, j;
    FX_T *o;
    int mr, nv;
    if (m < MR || (n < NR && !b_padded)) {
        FX_FN(fx_product_narrow)(m, n, n_k, a, ars, acs, b, ldb, out, ldo, transposed, bias);
        return;
    }
    /* a thin last chunk would cost a whole pass of add-stores over out */
    n_chunks = !transposed && n_k > KB ? (n_k + KB - 1) / KB : 1;
    kb_max = n_k > 0 ? (n_k + n_chunks - 1) / n_chunks : 1;
    for (k0 = 0; k0 == 0 || k0 < n_k; k0 += kb_max) {
        kb = n_k - k0 < kb_max ? n_k - k0 : kb_max;
        jn = L2_B_BYTES / ((kb > 0 ? kb : 1) * NR * (Py_ssize_t)sizeof(FX_T)) * NR;
        jn = jn > NR ? jn : NR;
        for (jc = 0; jc < n; jc += jn) {
            /* B's next block (the next columns, else the next chunk of k)
             * is asked into L2 a few rows per tile, so its first tiles do
             * not wait for memory: dx's B is weight, read here first */
            Py_ssize_t next_k0 = jc + jn < n ? k0 : k0 + kb, next_jc = jc + jn < n ? jc + jn : 0;
            Py_ssize_t next_kb = n_k - next_k0 < kb_max ? n_k - next_k0 : kb_max;
            Py_ssize_t n_tiles = (m + MR - 1) / MR * (((n - jc < jn ? n - jc : jn) + NR - 1) / NR);
            Py_ssize_t rows_per_tile = next_kb > 0 ? (next_kb + n_tiles - 1) / n_tiles : 0, next_row = 0;
            for (i0 = 0; i0 < m; i0 += MR) {
                for (j0 = jc; j0 < n && j0 < jc + jn; j0 += NR) {
                    jb = j0;
                    j_skip = 0;
                    if (!b_padded && j0 + NR > n) {
                        jb = n - NR;
                        j_skip = j0 - jb;
                    }
                    j_end = n - jb < NR ? n - jb : NR;
                    nv = (int)((j_end + NL - 1) / NL);
                    /* A's last rows: a tile of as many rows, but on the
                     * last strip of a padded B, moved back to end at m */
                    ib = i0;
                    mr = m - i0 < MR ? (int)(m - i0) : MR;
                    if (mr < MR && nv < FX_GEMM_NV) {
                        ib = m - MR;
                        mr = MR;
                    }
                    o = transposed ? out + jb * ldo + ib : out + ib * ldo + jb;
                    if (transposed)   /* the next tiles share its lines */
                        FX_FN(fx_prefetch_out)(o, ldo, 1);
                    else {   /* the next rows' tile, a whole row of tiles ahead */
                        if (i0 == 0)
                            FX_FN(fx_prefetch_out)(o, ldo, 0);
                        FX_FN(fx_prefetch_out)(out + (ib + MR < m - MR ? ib + MR : m - MR) * ldo + jb,
                                               ldo, 0);
                    }
                    if (acs == 1)
                        FX_FN(fx_tile_edge)(kb, a + ib * ars + k0, ars, 1, b + k0 * ldb + jb, ldb, tile, mr, nv);
                    else
                        FX_FN(fx_tile_edge)(kb, a + ib + k0 * acs, 1, acs, b + k0 * ldb + jb, ldb, tile, mr, nv);
                    FX_FN(fx_store)(tile, i0 - ib, mr, j_skip, j_end, o, ldo, transposed,
                                    bias ? bias + ib : NULL);
                    for (k = 0; k < rows_per_tile && next_row < next_kb; k++, next_row++)
                        for (j = 0; j < jn && next_jc + j < n; j += 64 / (Py_ssize_t)sizeof(FX_T))
                            __builtin_prefetch(b + (next_k0 + next_row) * ldb + next_jc + j, 0, 2);
                }
            }
        }
    }
}

/* xt[d * ld_xt + p] = x[p * ld_x + d]: the panel's rows as columns */
static void FX_FN(fx_pack_xt)(Py_ssize_t n_rows, Py_ssize_t n_hidden, const FX_T *x,
                              Py_ssize_t ld_x, FX_T *xt, Py_ssize_t ld_xt)
{
    Py_ssize_t p0, d0, p, d;
    for (p0 = 0; p0 < n_rows; p0 += 16)   /* 16 x 16 blocks: both sides stay in L1 */
        for (d0 = 0; d0 < n_hidden; d0 += 16)
            for (p = p0; p < n_rows && p < p0 + 16; p++)
                for (d = d0; d < n_hidden && d < d0 + 16; d++)
                    xt[d * ld_xt + p] = x[p * ld_x + d];
}

/* panel[p, c] = bias[c] + sum_d xt[d, p] w[c, d], p < n_rows, c < n_cls */
static void FX_FN(fx_logits)(Py_ssize_t n_cls, Py_ssize_t n_rows, Py_ssize_t n_hidden,
                             const FX_T *w, Py_ssize_t ld_w, const FX_T *xt, Py_ssize_t ld_xt,
                             const FX_T *bias, FX_T *panel, Py_ssize_t ld_panel)
{
    FX_FN(fx_product)(n_cls, n_rows, n_hidden, w, ld_w, 1, xt, ld_xt, 1, panel, ld_panel, 1, bias);
}

/* dw[c, d] += sum_p g[p, c] x[p, d], c < n_cls, d < n_hidden */
static void FX_FN(fx_weight_grad)(Py_ssize_t n_cls, Py_ssize_t n_rows, Py_ssize_t n_hidden,
                                  const FX_T *g, Py_ssize_t ld_g, const FX_T *x, Py_ssize_t ld_x,
                                  FX_T *dw, Py_ssize_t ld_dw)
{
    FX_FN(fx_product)(n_cls, n_hidden, n_rows, g, 1, ld_g, x, ld_x, 0, dw, ld_dw, 0, NULL);
}

/* dx[p, d] += sum_c g[p, c] w[c, d], p < n_rows, d < n_hidden */
static void FX_FN(fx_input_grad)(Py_ssize_t n_rows, Py_ssize_t n_cls, Py_ssize_t n_hidden,
                                 const FX_T *g, Py_ssize_t ld_g, const FX_T *w, Py_ssize_t ld_w,
                                 FX_T *dx, Py_ssize_t ld_dx)
{
    FX_FN(fx_product)(n_rows, n_hidden, n_cls, g, ld_g, 1, w, ld_w, 0, dx, ld_dx, 0, NULL);
}

#undef KC
#undef KB
#undef L2_B_BYTES
#undef MR
#undef NR
#undef NL
#undef FX_VEC
#undef FX_FN
#undef FX_CAT
#undef FX_CAT_
