# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Fused linear + softmax cross-entropy: the loss of logits = x @ weight.T + bias
and its gradients with respect to x, weight and bias, without the logits.

Design
a) Blocks.  The logits exist one block at a time (block_rows x block_classes),
   computed by BLAS gemm from scipy.linalg.cython_blas (scipy's own BLAS:
   nothing to link at build time).  BLAS is column-major: a C-order
   (rows x classes) block is the Fortran matrix block^T = W_blk . X_blk^T,
   so every product below is written for the transposes.  x and weight may
   each be C- or Fortran-ordered (one contiguous axis, any leading stride).
   In the AVX-512 build, with both C-ordered and at least FX_GEMM_PAD
   hidden values (pb.tiled), the forward's logits and the panel sweep's
   three products are fx_gemm.h's register-tiled loops instead: BLAS packs
   both operands on every call, and the panel sweep would pay that for all
   of weight twice per panel (the four-product sweep of thin panels keeps
   BLAS).
   Per row, the online log-sum-exp pair (max, sum) of a block's classes is
   merged into a per-(class group, row) slot (fx_lse_partial, fx_lse_merge),
   the target logit is taken as its block passes, and the slots are merged
   row by row at the end (finish_rows).
b) Forward (tile sweep).  The (rows x classes) plane is cut into
   n_groups x n_groups tiles (n_groups >= threads); threads take tiles
   dynamically, so a thread the OS holds back does not hold up the rest.
   A tile is walked block by block, rows outer; with fx_gemm.h's products
   each thread transposes a block of x's rows into its own slice of xt
   once for all the tile's blocks of classes.  Extra memory: threads x one
   block (and one transposed block of x), and O(groups x rows) doubles.
c) Gradient: G = dloss/dlogits = scale * (softmax * (1 + 2 z lse)
   - (1 - eps) onehot - eps / C), times the soft-cap derivative, needs the
   row's final lse, so a block's logits are needed twice: once for the lse
   and once for G.  Two schedules:
   - Panel sweep (the default when the caller can afford a panel, see
     fastxent/linear.py): a panel of rows x ALL classes is kept in the
     scratch.  Step k walks the class groups once (in parallel, dynamic);
     per class block it turns panel k - 1's logits into G in place, adds
     dweight_blk += G_blk^T . X_(k-1) and dx_(k-1) += G_blk . W_blk, then
     computes panel k's logits over the same columns while W_blk is still
     in the cache.  After the step, panel k's rows get their lse (serial)
     and panel k - 1's dx is complete.  Without soft-capping (whose
     slope needs the logits themselves) the forward leaves each block row
     as exp(logit - that row's block max), with the max beside it, so G
     costs a multiply per value instead of a second exp.  No two threads
     share dweight rows (class groups); each thread adds its dx into its
     own (panel rows x hidden) slice, summed into dx after the step.  Three
     gemms of the head's size, like a path that stores the logits, and one
     pass over weight and dweight per panel.
   - Tile sweep (panels too thin to keep gemm efficient): the forward
     sweep above, then every block is computed again, turned into G, and
     dx_blk += G . W_blk, dweight_blk += G^T . X_blk.  Without a
     (threads x C x D) buffer: the tiles are visited in n_groups phases; in
     phase p, row group a is paired with class group (a + p) mod n_groups,
     so no two tiles of a phase share rows (dx) or classes (dweight, dbias);
     the barrier ending each parallel loop separates the phases.  Four
     gemms: one more than the panel sweep, with only a block of memory.
d) BLAS threads.  gemm is called from inside the OpenMP threads, one
   block per call, and must then run single-threaded itself: the caller
   (fastxent/_blas.py) limits the BLAS libraries to one thread around the
   call.
e) Precision: sums of exps, row sums, losses, lse and dbias in double; the
   logits, exps and G in the inputs' dtype (gemm's precision).

Arguments are tagged IN / OUT.  Nothing here knows about Python objects
beyond typed memoryviews; validation and defaults live in fastxent/.
"""
from cython cimport floating
from cython.parallel cimport prange, parallel, threadid
from libc.math cimport exp, log
from libc.string cimport memcpy, memset
from scipy.linalg.cython_blas cimport sgemm, dgemm

from fx_rows cimport row_lse_partial, row_exps, row_sum, fx_lse_merge

cdef char *TRANS = b'T'
cdef char *NO_TRANS = b'N'

ctypedef fused index_t:
    int
    long long

cdef extern from "fx_linear.h" nogil:
    void fx_softcap_f(float *x, Py_ssize_t n, double cap)
    void fx_softcap_d(double *x, Py_ssize_t n, double cap)
    void fx_grad_row_f(float *s, Py_ssize_t n, double max, double log_sum,
                       double prob_scale, double shift, double inv_cap)
    void fx_grad_row_d(double *s, Py_ssize_t n, double max, double log_sum,
                       double prob_scale, double shift, double inv_cap)
    void fx_grad_row_exps_f(float *s, Py_ssize_t n, double scale, double shift)
    void fx_grad_row_exps_d(double *s, Py_ssize_t n, double scale, double shift)

cdef extern from "fx_gemm.h" nogil:
    int FX_GEMM        # 1: this build has the register-tiled products
    int FX_GEMM_PAD    # xt's rows are padded to a multiple of this
    int FX_GEMM_BYTES  # bytes of the products' vectors
    void fx_pack_xt_f(Py_ssize_t n_rows, Py_ssize_t n_hidden, const float *x, Py_ssize_t ld_x,
                      float *xt, Py_ssize_t ld_xt)
    void fx_pack_xt_d(Py_ssize_t n_rows, Py_ssize_t n_hidden, const double *x, Py_ssize_t ld_x,
                      double *xt, Py_ssize_t ld_xt)
    void fx_logits_f(Py_ssize_t n_cls, Py_ssize_t n_rows, Py_ssize_t n_hidden, const float *w,
                     Py_ssize_t ld_w, const float *xt, Py_ssize_t ld_xt, const float *bias,
                     float *panel, Py_ssize_t ld_panel)
    void fx_logits_d(Py_ssize_t n_cls, Py_ssize_t n_rows, Py_ssize_t n_hidden, const double *w,
                     Py_ssize_t ld_w, const double *xt, Py_ssize_t ld_xt, const double *bias,
                     double *panel, Py_ssize_t ld_panel)
    void fx_weight_grad_f(Py_ssize_t n_cls, Py_ssize_t n_rows, Py_ssize_t n_hidden, const float *g,
                          Py_ssize_t ld_g, const float *x, Py_ssize_t ld_x, float *dw, Py_ssize_t ld_dw)
    void fx_weight_grad_d(Py_ssize_t n_cls, Py_ssize_t n_rows, Py_ssize_t n_hidden, const double *g,
                          Py_ssize_t ld_g, const double *x, Py_ssize_t ld_x, double *dw, Py_ssize_t ld_dw)
    void fx_input_grad_f(Py_ssize_t n_rows, Py_ssize_t n_cls, Py_ssize_t n_hidden, const float *g,
                         Py_ssize_t ld_g, const float *w, Py_ssize_t ld_w, float *dx, Py_ssize_t ld_dx)
    void fx_input_grad_d(Py_ssize_t n_rows, Py_ssize_t n_cls, Py_ssize_t n_hidden, const double *g,
                         Py_ssize_t ld_g, const double *w, Py_ssize_t ld_w, double *dx, Py_ssize_t ld_dx)

XT_PAD = FX_GEMM_PAD
VECTOR_BYTES = FX_GEMM_BYTES


cdef inline bint tiled(bint x_row_major, bint weight_row_major, Py_ssize_t n_hidden) noexcept nogil:
    """Whether the products are fx_gemm.h's (design note a): below
    FX_GEMM_PAD hidden values a tile's vectors would be mostly padding."""
    return FX_GEMM and x_row_major and weight_row_major and n_hidden >= FX_GEMM_PAD


def tiled_products(bint x_row_major, bint weight_row_major, Py_ssize_t n_hidden):
    """For fastxent/linear.py: whether linear_xent will use fx_gemm.h's
    products (and so wants xt for the panel sweep)."""
    return tiled(x_row_major, weight_row_major, n_hidden)


cdef struct Operand:
    # a read-only matrix (rows x cols) as BLAS sees it
    const void *data
    int row_major        # 1: C-order rows (stride 1 along cols), 0: Fortran order
    int ld               # leading dimension, in items
    Py_ssize_t row_step  # items between consecutive rows (ld or 1)


cdef struct Problem:
    Operand x, weight
    const void *bias     # NULL or (n_classes,)
    const void *labels   # (n_rows,) index_t
    int n_hidden
    Py_ssize_t n_rows, n_classes
    int block_rows, block_classes
    int n_groups         # class groups (and row groups of the tile sweep)
    double softcap       # 0: none
    bint has_ignore
    long long ignore_index
    double smoothing, z_loss, grad_scale
    bint tiled           # the products by fx_gemm.h (x and weight C-order), else BLAS
    void *xt             # tiled: the panel sweep's (n_hidden, ld_xt), the next panel's x
                         # transposed; the forward's (threads x n_hidden, ld_xt), one block's per thread
    Py_ssize_t ld_xt
    double *block_max    # panel sweep without soft-capping: (n_groups x group_blocks, block_rows),
                         # the max of each block's row (the panel keeps exps, see forward_block); else NULL
    int group_blocks     # blocks of classes a group holds at most


cdef struct Slots:
    # per-(class group, row) partial log-sum-exp pairs: slot (g, r) at g * stride + r
    double *max
    double *sum
    double *logit_sum    # NULL unless label smoothing needs the rows' logit sums
    Py_ssize_t stride


cdef inline void gemm(char *transa, char *transb, int m, int n, int k,
                      const floating *a, int lda, const floating *b, int ldb,
                      floating beta, floating *c, int ldc) noexcept nogil:
    """c = op(a) . op(b) + beta c, column-major (Fortran) BLAS."""
    cdef floating alpha = 1
    if floating is float:
        sgemm(transa, transb, &m, &n, &k, &alpha, <float *>a, &lda, <float *>b, &ldb, &beta, c, &ldc)
    else:
        dgemm(transa, transb, &m, &n, &k, &alpha, <double *>a, &lda, <double *>b, &ldb, &beta, c, &ldc)


cdef inline const floating *rows_of(const Operand *op, Py_ssize_t first, floating *kind) noexcept nogil:
    """Pointer to row `first` of the operand (kind only selects the type)."""
    return <const floating *>op.data + first * op.row_step


cdef inline long long label_of(const Problem *pb, Py_ssize_t row, index_t *kind) noexcept nogil:
    return (<const index_t *>pb.labels)[row]


cdef inline bint ignored(const Problem *pb, long long label) noexcept nogil:
    return pb.has_ignore and label == pb.ignore_index


cdef inline Py_ssize_t group_start(Py_ssize_t n, int group, int n_groups) noexcept nogil:
    return n * group // n_groups


cdef void logits_block(const Problem *pb, Py_ssize_t r0, int n_rows, Py_ssize_t c0, int n_classes,
                       floating *out, int ld_out,
                       const floating *xt) noexcept nogil:   # NULL, or rows r0... of x transposed
    """out (n_rows x n_classes, rows ld_out apart) = x[r0:] @ weight[c0:].T
    + bias[c0:], soft-capped when asked: by fx_gemm.h from xt (ld_xt apart)
    when given, else by BLAS (Fortran: out^T = op(W) . op(X^T))."""
    cdef floating beta = 0
    cdef int r
    cdef const floating *x = rows_of(&pb.x, r0, out)
    cdef const floating *w = rows_of(&pb.weight, c0, out)
    cdef const floating *bias = <const floating *>pb.bias + c0 if pb.bias != NULL else NULL
    if xt != NULL:
        if floating is float:
            fx_logits_f(n_classes, n_rows, pb.n_hidden, w, pb.weight.ld, xt, pb.ld_xt, bias, out, ld_out)
        else:
            fx_logits_d(n_classes, n_rows, pb.n_hidden, w, pb.weight.ld, xt, pb.ld_xt, bias, out, ld_out)
    elif pb.bias != NULL:
        for r in range(n_rows):
            memcpy(out + <Py_ssize_t>r * ld_out, bias, n_classes * sizeof(floating))
        beta = 1
    elif pb.n_hidden == 0:
        for r in range(n_rows):
            memset(out + <Py_ssize_t>r * ld_out, 0, n_classes * sizeof(floating))
    if pb.n_hidden > 0 and xt == NULL:
        gemm(TRANS if pb.weight.row_major else NO_TRANS, NO_TRANS if pb.x.row_major else TRANS,
             n_classes, n_rows, pb.n_hidden, w, pb.weight.ld, x, pb.x.ld, beta, out, ld_out)
    if pb.softcap != 0.0:
        for r in range(n_rows):
            if floating is float:
                fx_softcap_f(out + <Py_ssize_t>r * ld_out, n_classes, pb.softcap)
            else:
                fx_softcap_d(out + <Py_ssize_t>r * ld_out, n_classes, pb.softcap)


cdef void clear_slots(const Slots *slots, int group, Py_ssize_t first, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i = group * slots.stride + first, end = i + n
    while i < end:
        slots.max[i] = -1.0 / 0.0
        slots.sum[i] = 0.0
        if slots.logit_sum != NULL:
            slots.logit_sum[i] = 0.0
        i += 1


cdef void forward_block(const Problem *pb, floating *block, int ld,
                        Py_ssize_t r0, int n_rows, Py_ssize_t c0, int n_classes, index_t *kind,
                        const Slots *slots, int group, Py_ssize_t slot0,
                        double *target,        # OUT (n_rows,) target logits of rows r0...
                        double *block_max      # NULL, or OUT (n_rows,): the rows' maxima, and the
                        ) noexcept nogil:      # block's logits become exp(logit - its row's max)
    """Merges the block's rows into slots (group, slot0 + r) and takes the
    target logits that fall in it.  With block_max, the exps are kept for
    grad_block, which then needs a multiply per value, not a second exp
    (the panel sweep without soft-capping, whose slope needs the logits)."""
    cdef int r
    cdef Py_ssize_t slot
    cdef long long label
    cdef double row_max, row_sum_exp
    cdef floating *s
    for r in range(n_rows):
        s = block + <Py_ssize_t>r * ld
        slot = group * slots.stride + slot0 + r
        if slots.logit_sum != NULL:
            slots.logit_sum[slot] += row_sum(s, n_classes)
        label = label_of(pb, r0 + r, kind)
        if not ignored(pb, label) and c0 <= label < c0 + n_classes:
            target[r] = s[label - c0]
        if block_max != NULL:
            row_sum_exp = row_exps(s, n_classes, &row_max)
            block_max[r] = row_max
        else:
            row_lse_partial(s, n_classes, &row_max, &row_sum_exp)
        fx_lse_merge(&slots.max[slot], &slots.sum[slot], row_max, row_sum_exp)


cdef double finish_rows(const Problem *pb, Py_ssize_t r0, Py_ssize_t n_rows, index_t *kind,
                        const Slots *slots, Py_ssize_t slot0,
                        double *loss,       # IN target logits, OUT losses, of rows r0...
                        double *row_max,    # OUT (n_rows,)
                        double *log_sum     # OUT (n_rows,)
                        ) noexcept nogil:
    """Merges the class groups' slots of rows r0... (slots slot0...) into
    each row's lse and loss; returns the sum of the losses."""
    cdef Py_ssize_t r, slot
    cdef int group
    cdef double m, sum_exp, logit_sum, lse, total = 0.0
    for r in range(n_rows):
        m = -1.0 / 0.0
        sum_exp = 0.0
        logit_sum = 0.0
        for group in range(pb.n_groups):
            slot = group * slots.stride + slot0 + r
            fx_lse_merge(&m, &sum_exp, slots.max[slot], slots.sum[slot])
            if slots.logit_sum != NULL:
                logit_sum = logit_sum + slots.logit_sum[slot]
        row_max[r] = m
        log_sum[r] = log(sum_exp)
        if ignored(pb, label_of(pb, r0 + r, kind)):
            loss[r] = 0.0
            continue
        lse = m + log_sum[r]
        # lse - x_t as (max - x_t) + log_sum: see _sparse.pyx
        loss[r] = ((1.0 - pb.smoothing) * ((m - loss[r]) + log_sum[r])
                   + pb.smoothing * ((m - logit_sum / pb.n_classes) + log_sum[r])
                   + pb.z_loss * lse * lse)
        total += loss[r]
    return total


cdef void grad_block(const Problem *pb, floating *block, int ld,
                     Py_ssize_t r0, int n_rows, Py_ssize_t c0, int n_classes, index_t *kind,
                     const double *row_max, const double *log_sum,   # IN (n_rows,) of rows r0...
                     const double *block_max   # NULL, or IN (n_rows,): the block holds exps (forward_block)
                     ) noexcept nogil:
    """The block's logits (or exps), in place, become G (see the design note, c)."""
    cdef int r
    cdef long long label
    cdef double lse, cap_slope, t, prob_scale
    cdef double inv_cap = 1.0 / pb.softcap if pb.softcap != 0.0 else 0.0
    cdef double shift = pb.grad_scale * pb.smoothing / pb.n_classes
    cdef double target_scale = pb.grad_scale * (1.0 - pb.smoothing)
    cdef floating *s
    for r in range(n_rows):
        s = block + <Py_ssize_t>r * ld
        label = label_of(pb, r0 + r, kind)
        if ignored(pb, label):
            memset(s, 0, n_classes * sizeof(floating))
            continue
        lse = row_max[r] + log_sum[r]
        cap_slope = 1.0
        if inv_cap != 0.0 and c0 <= label < c0 + n_classes:
            t = s[label - c0] * inv_cap
            cap_slope = 1.0 - t * t
        prob_scale = pb.grad_scale * (1.0 + 2.0 * pb.z_loss * lse)
        if block_max != NULL:
            # exp(logit - lse) = exp(logit - block max) * exp((block max - row max) - log_sum)
            prob_scale = prob_scale * exp((block_max[r] - row_max[r]) - log_sum[r])
            if floating is float:
                fx_grad_row_exps_f(s, n_classes, prob_scale, shift)
            else:
                fx_grad_row_exps_d(s, n_classes, prob_scale, shift)
        elif floating is float:
            fx_grad_row_f(s, n_classes, row_max[r], log_sum[r], prob_scale, shift, inv_cap)
        else:
            fx_grad_row_d(s, n_classes, row_max[r], log_sum[r], prob_scale, shift, inv_cap)
        if c0 <= label < c0 + n_classes:
            s[label - c0] = s[label - c0] - <floating>(target_scale * cap_slope)


cdef void weight_grad_block(const Problem *pb, const floating *grad, int ld,
                            Py_ssize_t r0, int n_rows, Py_ssize_t c0, int n_classes,
                            floating *dweight,   # OUT (n_classes, n_hidden) C-order, accumulated
                            double *dbias        # OUT (n_classes,) accumulated, or NULL
                            ) noexcept nogil:
    """dweight[c0:] += G^T . x[r0:] and dbias[c0:] += G's column sums, G the
    (n_rows x n_classes) block, rows ld apart."""
    cdef int r, j
    cdef const floating *g
    if dbias != NULL:
        for r in range(n_rows):
            g = grad + <Py_ssize_t>r * ld
            for j in range(n_classes):
                dbias[c0 + j] += g[j]
    if pb.tiled:
        if floating is float:
            fx_weight_grad_f(n_classes, n_rows, pb.n_hidden, grad, ld, rows_of(&pb.x, r0, dweight), pb.x.ld,
                             dweight + c0 * pb.n_hidden, pb.n_hidden)
        else:
            fx_weight_grad_d(n_classes, n_rows, pb.n_hidden, grad, ld, rows_of(&pb.x, r0, dweight), pb.x.ld,
                             dweight + c0 * pb.n_hidden, pb.n_hidden)
    elif pb.n_hidden > 0:
        # dweight^T (D x classes) += op(X^T) (D x rows) . G (rows x classes)
        gemm(NO_TRANS if pb.x.row_major else TRANS, TRANS, pb.n_hidden, n_classes, n_rows,
             rows_of(&pb.x, r0, dweight), pb.x.ld, grad, ld, 1, dweight + c0 * pb.n_hidden, pb.n_hidden)


cdef void input_grad_block(const Problem *pb, const floating *grad, int ld,
                           Py_ssize_t r0, int n_rows, Py_ssize_t c0, int n_classes,
                           floating *dx   # OUT (n_rows, n_hidden) C-order, accumulated
                           ) noexcept nogil:
    """dx[r0:] += G . weight[c0:c0 + n_classes], G (n_rows x n_classes), rows ld apart."""
    if pb.tiled:
        if floating is float:
            fx_input_grad_f(n_rows, n_classes, pb.n_hidden, grad, ld, rows_of(&pb.weight, c0, dx),
                            pb.weight.ld, dx + r0 * pb.n_hidden, pb.n_hidden)
        else:
            fx_input_grad_d(n_rows, n_classes, pb.n_hidden, grad, ld, rows_of(&pb.weight, c0, dx),
                            pb.weight.ld, dx + r0 * pb.n_hidden, pb.n_hidden)
    elif pb.n_hidden > 0:
        # dx^T (D x rows) += op(W^T) (D x classes) . G^T (classes x rows)
        gemm(NO_TRANS if pb.weight.row_major else TRANS, NO_TRANS, pb.n_hidden, n_rows, n_classes,
             rows_of(&pb.weight, c0, dx), pb.weight.ld, grad, ld, 1, dx + r0 * pb.n_hidden, pb.n_hidden)


# --- tile sweep (design note b, c) ---------------------------------------------------------

cdef void forward_tile(const Problem *pb, int row_group, int class_group, index_t *kind,
                       const Slots *slots,
                       double *target,       # OUT (n_rows,) target logits
                       floating *scratch,
                       floating *xt) noexcept nogil:   # NULL (BLAS), or this thread's (n_hidden, ld_xt)
    """A tile's logits block by block, rows outer: with fx_gemm.h's
    products each block of rows is transposed into xt once for all its
    blocks of classes."""
    cdef Py_ssize_t row_lo = group_start(pb.n_rows, row_group, pb.n_groups)
    cdef Py_ssize_t row_hi = group_start(pb.n_rows, row_group + 1, pb.n_groups)
    cdef Py_ssize_t cls_lo = group_start(pb.n_classes, class_group, pb.n_groups)
    cdef Py_ssize_t cls_hi = group_start(pb.n_classes, class_group + 1, pb.n_groups)
    cdef Py_ssize_t r0, c0
    cdef int nr, nc
    clear_slots(slots, class_group, row_lo, row_hi - row_lo)
    r0 = row_lo
    while r0 < row_hi:
        nr = <int>min(<Py_ssize_t>pb.block_rows, row_hi - r0)
        if xt != NULL:
            if floating is float:
                fx_pack_xt_f(nr, pb.n_hidden, rows_of(&pb.x, r0, scratch), pb.x.ld, xt, pb.ld_xt)
            else:
                fx_pack_xt_d(nr, pb.n_hidden, rows_of(&pb.x, r0, scratch), pb.x.ld, xt, pb.ld_xt)
        c0 = cls_lo
        while c0 < cls_hi:
            nc = <int>min(<Py_ssize_t>pb.block_classes, cls_hi - c0)
            logits_block(pb, r0, nr, c0, nc, scratch, nc, xt)
            forward_block(pb, scratch, nc, r0, nr, c0, nc, kind, slots, class_group, r0, target + r0, NULL)
            c0 += nc
        r0 += nr


cdef void backward_tile(const Problem *pb, int row_group, int class_group, index_t *kind,
                        const double *row_max, const double *log_sum,   # IN (n_rows,)
                        floating *dx,          # OUT (n_rows, n_hidden) C-order, accumulated
                        floating *dweight,     # OUT (n_classes, n_hidden) C-order, accumulated
                        double *dbias,         # OUT (n_classes,) accumulated, or NULL
                        floating *scratch) noexcept nogil:
    cdef Py_ssize_t row_lo = group_start(pb.n_rows, row_group, pb.n_groups)
    cdef Py_ssize_t row_hi = group_start(pb.n_rows, row_group + 1, pb.n_groups)
    cdef Py_ssize_t cls_lo = group_start(pb.n_classes, class_group, pb.n_groups)
    cdef Py_ssize_t cls_hi = group_start(pb.n_classes, class_group + 1, pb.n_groups)
    cdef Py_ssize_t r0, c0
    cdef int nr, nc
    c0 = cls_lo
    while c0 < cls_hi:
        nc = <int>min(<Py_ssize_t>pb.block_classes, cls_hi - c0)
        r0 = row_lo
        while r0 < row_hi:
            nr = <int>min(<Py_ssize_t>pb.block_rows, row_hi - r0)
            logits_block(pb, r0, nr, c0, nc, scratch, nc, NULL)
            grad_block(pb, scratch, nc, r0, nr, c0, nc, kind, row_max + r0, log_sum + r0, NULL)
            weight_grad_block(pb, scratch, nc, r0, nr, c0, nc, dweight, dbias)
            input_grad_block(pb, scratch, nc, r0, nr, c0, nc, dx)
            r0 += nr
        c0 += nc


cdef double tile_sweep(const Problem *pb, index_t *kind, const Slots *slots,
                       double *loss, double *row_max, double *log_sum, bint want_grad,
                       floating *dx, floating *dweight, double *dbias,
                       floating[:, :, ::1] scratch, int n_threads) noexcept nogil:
    cdef int n_groups = pb.n_groups, tile, group, phase
    cdef double total
    cdef floating *tmp
    cdef floating *xt
    with parallel(num_threads=n_threads):
        tmp = &scratch[threadid(), 0, 0]
        xt = <floating *>pb.xt + threadid() * pb.n_hidden * pb.ld_xt if pb.xt != NULL else NULL
        for tile in prange(n_groups * n_groups, schedule='dynamic', chunksize=1):
            forward_tile(pb, tile // n_groups, tile % n_groups, kind, slots, loss, tmp, xt)
    total = finish_rows(pb, 0, pb.n_rows, kind, slots, 0, loss, row_max, log_sum)
    if not want_grad:
        return total
    for phase in range(n_groups):
        with parallel(num_threads=n_threads):
            tmp = &scratch[threadid(), 0, 0]
            for group in prange(n_groups, schedule='dynamic', chunksize=1):
                backward_tile(pb, group, (group + phase) % n_groups, kind, row_max, log_sum,
                              dx, dweight, dbias, tmp)
    return total


# --- panel sweep (design note c) ------------------------------------------------------------

cdef void panel_group(const Problem *pb, int group, index_t *kind, const Slots *slots,
                      Py_ssize_t done_r0, int done_rows,   # rows whose logits the panel holds, lse known
                      const double *row_max, const double *log_sum,   # IN (done_rows,)
                      Py_ssize_t next_r0, int next_rows,   # rows whose logits are computed now
                      double *target,        # OUT (next_rows,) their target logits
                      floating *panel,       # IN done rows' logits, OUT next rows' logits
                      floating *dx_part,     # OUT (done_rows, n_hidden) this thread's share, accumulated
                      floating *dweight, double *dbias) noexcept nogil:
    """One class group's part of a panel step (design note c): the done rows'
    G, dweight and dx, then the next rows' logits over the same columns of
    the panel, while this group's weight rows are still in the cache."""
    cdef Py_ssize_t c0 = group_start(pb.n_classes, group, pb.n_groups)
    cdef Py_ssize_t cls_hi = group_start(pb.n_classes, group + 1, pb.n_groups)
    cdef int nc, ld = <int>pb.n_classes
    # equal blocks: a thin last block (1032 classes = 1024 + 8) would run
    # the products' narrow path (fx_gemm.h) or a BLAS call below its speed
    cdef Py_ssize_t n_blocks = (cls_hi - c0 + pb.block_classes - 1) // pb.block_classes
    cdef Py_ssize_t block = (cls_hi - c0 + n_blocks - 1) // n_blocks if n_blocks else 0
    # the block's row maxima (done rows' are read before next rows' replace them)
    cdef double *block_max = NULL
    if pb.block_max != NULL:
        block_max = pb.block_max + <Py_ssize_t>group * pb.group_blocks * pb.block_rows
    if next_rows:
        clear_slots(slots, group, 0, next_rows)
    while c0 < cls_hi:
        nc = <int>min(block, cls_hi - c0)
        if done_rows:
            grad_block(pb, panel + c0, ld, done_r0, done_rows, c0, nc, kind, row_max, log_sum, block_max)
            weight_grad_block(pb, panel + c0, ld, done_r0, done_rows, c0, nc, dweight, dbias)
            input_grad_block(pb, panel + c0, ld, 0, done_rows, c0, nc, dx_part)
        if next_rows:
            logits_block(pb, next_r0, next_rows, c0, nc, panel + c0, ld, <const floating *>pb.xt)
            forward_block(pb, panel + c0, ld, next_r0, next_rows, c0, nc, kind, slots, group, 0, target,
                          block_max)
        c0 += nc
        if block_max != NULL:
            block_max += pb.block_rows


cdef double panel_sweep(const Problem *pb, index_t *kind, const Slots *slots,
                        double *loss, double *row_max, double *log_sum,
                        floating *dx, floating *dweight, double *dbias,
                        floating *panel,      # scratch (block_rows, n_classes)
                        floating *dx_parts,   # scratch (n_threads, block_rows, n_hidden)
                        int n_threads) noexcept nogil:
    """Panel steps: step k computes panel k's logits and finishes panel k - 1
    (one pass over weight and dweight per panel).  Each thread sums its class
    groups' dx into its own slice of dx_parts; the slices are added into dx
    after the step (no two threads share a dx entry, and no atomics).  Every
    other step takes the class groups last to first: the groups a step ends
    with (their panel columns, weight and dweight rows) are then the next
    step's first, while they are still in the caches (measured at 1024 x 512
    x 32000 float32, 2 threads: faster in 11 of 15 alternating processes,
    by about 1.5 %)."""
    cdef Py_ssize_t done_r0 = 0, next_r0 = 0, r, t, j
    cdef Py_ssize_t part_size = <Py_ssize_t>pb.block_rows * pb.n_hidden
    cdef int done_rows = 0, next_rows, group
    cdef bint backwards = False
    cdef double total = 0.0
    cdef floating *part
    cdef floating *src
    cdef floating *dx_row
    while True:
        next_rows = <int>min(<Py_ssize_t>pb.block_rows, pb.n_rows - next_r0)
        if done_rows == 0 and next_rows == 0:
            return total
        if done_rows and dx_parts != NULL:
            memset(dx_parts, 0, n_threads * part_size * sizeof(floating))
        if next_rows and pb.xt != NULL:
            if floating is float:
                fx_pack_xt_f(next_rows, pb.n_hidden, rows_of(&pb.x, next_r0, dx), pb.x.ld,
                             <float *>pb.xt, pb.ld_xt)
            else:
                fx_pack_xt_d(next_rows, pb.n_hidden, rows_of(&pb.x, next_r0, dx), pb.x.ld,
                             <double *>pb.xt, pb.ld_xt)
        with parallel(num_threads=n_threads):
            part = dx_parts + threadid() * part_size if dx_parts != NULL else NULL
            for group in prange(pb.n_groups, schedule='dynamic', chunksize=1):
                panel_group(pb, pb.n_groups - 1 - group if backwards else group, kind, slots,
                            done_r0, done_rows, row_max + done_r0, log_sum + done_r0,
                            next_r0, next_rows, loss + next_r0, panel, part, dweight, dbias)
        if done_rows and dx_parts != NULL:
            for r in prange(done_rows, schedule='static', num_threads=n_threads):
                dx_row = dx + (done_r0 + r) * pb.n_hidden
                for t in range(n_threads):
                    src = dx_parts + t * part_size + r * pb.n_hidden
                    for j in range(pb.n_hidden):
                        dx_row[j] += src[j]
        if next_rows:
            total += finish_rows(pb, next_r0, next_rows, kind, slots, 0, loss + next_r0,
                                 row_max + next_r0, log_sum + next_r0)
        done_r0, done_rows = next_r0, next_rows
        next_r0 += next_rows
        backwards = not backwards


def linear_xent(const floating[:, :] x,           # IN  (n_rows, n_hidden), one contiguous axis
                bint x_row_major, int x_ld,
                const floating[:, :] weight,      # IN  (n_classes, n_hidden), one contiguous axis
                bint weight_row_major, int weight_ld,
                const floating[::1] bias,         # IN  (n_classes,) or None
                const index_t[::1] labels,        # IN  (n_rows,), checked by _sparse.check_labels
                bint has_ignore, long long ignore_index,
                double smoothing, double z_loss, double softcap,
                double[::1] loss,                 # OUT (n_rows,) per-row losses
                double[:, ::1] stats,             # OUT (2, n_rows): row max, log of the sum (lse = sum)
                floating[:, ::1] dx,              # OUT (n_rows, n_hidden) zeros, or None (no gradients)
                floating[:, ::1] dweight,         # OUT (n_classes, n_hidden) zeros, or None
                double[::1] dbias,                # OUT (n_classes,) zeros, or None
                double grad_scale,
                floating[:, :, ::1] scratch,      # tile sweep: (n_threads, block_rows, block_classes);
                                                  # panel sweep: (1, panel_rows, n_classes)
                floating[:, :, ::1] dx_parts,     # panel sweep: (n_threads, panel_rows, n_hidden), else None
                floating[:, ::1] xt,              # if tiled_products(), zeros, for the panel sweep
                                                  # (n_hidden, panel_rows rounded up to a multiple of
                                                  # XT_PAD), for the forward's tile sweep (n_threads *
                                                  # n_hidden, block_rows rounded up); else None
                bint panels,                      # the panel sweep (gradients only)
                int block_classes,                # panel sweep: classes per gemm
                double[:, :, ::1] partials,       # (3, n_groups, n_rows, or panel_rows for panels)
                double[:, ::1] block_max,         # panel sweep without softcap: (n_groups x the most
                                                  # blocks of classes a group holds, panel_rows); else None
                int n_threads):
    """Fills loss and stats (and the gradients when dx is given); returns
    the sum of the per-row losses, summed serially in row order (the same
    for any thread count)."""
    cdef Problem pb
    cdef Slots slots
    cdef Py_ssize_t n_rows = x.shape[0], n_classes = weight.shape[0], row
    cdef bint want_grad = dx is not None
    cdef double total
    cdef index_t *kind = NULL
    cdef floating *dx_ptr = NULL
    cdef floating *dweight_ptr = NULL
    cdef double *dbias_ptr = NULL
    cdef floating *parts_ptr = NULL
    if n_rows == 0:
        return 0.0
    if n_classes == 0:   # every label was ignored (the checks let nothing else through)
        for row in range(n_rows):
            loss[row] = 0.0
            stats[0, row] = -1.0 / 0.0
            stats[1, row] = 0.0
        return 0.0
    pb.x.data = &x[0, 0]
    pb.x.row_major = x_row_major
    pb.x.ld = x_ld
    pb.x.row_step = x_ld if x_row_major else 1
    pb.weight.data = &weight[0, 0]
    pb.weight.row_major = weight_row_major
    pb.weight.ld = weight_ld
    pb.weight.row_step = weight_ld if weight_row_major else 1
    pb.bias = &bias[0] if bias is not None else NULL
    pb.labels = &labels[0]
    pb.n_hidden = <int>x.shape[1]
    pb.n_rows = n_rows
    pb.n_classes = n_classes
    pb.block_rows = <int>scratch.shape[1]
    pb.block_classes = block_classes if panels else <int>scratch.shape[2]
    pb.n_groups = <int>partials.shape[1]
    pb.softcap = softcap
    pb.has_ignore = has_ignore
    pb.ignore_index = ignore_index
    pb.smoothing = smoothing
    pb.z_loss = z_loss
    pb.grad_scale = grad_scale
    pb.tiled = tiled(x_row_major, weight_row_major, pb.n_hidden)
    pb.xt = NULL
    pb.ld_xt = 0
    pb.block_max = NULL
    pb.group_blocks = 0
    if panels and block_max is not None and softcap == 0.0:
        pb.block_max = &block_max[0, 0]
        pb.group_blocks = <int>(block_max.shape[0] // pb.n_groups)
    if pb.tiled and xt is not None:
        pb.xt = &xt[0, 0]
        pb.ld_xt = xt.shape[1]
    slots.max = &partials[0, 0, 0]
    slots.sum = &partials[1, 0, 0]
    slots.logit_sum = &partials[2, 0, 0] if smoothing != 0.0 else NULL
    slots.stride = partials.shape[2]
    if want_grad and pb.n_hidden > 0:
        dx_ptr = &dx[0, 0]
        dweight_ptr = &dweight[0, 0]
    if dbias is not None:
        dbias_ptr = &dbias[0]
    if panels and pb.n_hidden > 0:
        parts_ptr = &dx_parts[0, 0, 0]
    # the target logits are parked in `loss`; finish_rows reads each before
    # overwriting it with the row's loss
    with nogil:
        if want_grad and panels:
            total = panel_sweep(&pb, kind, &slots, &loss[0], &stats[0, 0], &stats[1, 0],
                                dx_ptr, dweight_ptr, dbias_ptr, &scratch[0, 0, 0], parts_ptr, n_threads)
        else:
            total = tile_sweep(&pb, kind, &slots, &loss[0], &stats[0, 0], &stats[1, 0], want_grad,
                               dx_ptr, dweight_ptr, dbias_ptr, scratch, n_threads)
    return total
