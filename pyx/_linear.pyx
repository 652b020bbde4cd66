# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Fused linear + softmax cross-entropy: the loss of logits = x @ weight.T + bias
and its gradients with respect to x, weight and bias, without the logits.

Design
a) Blocks.  The logits exist one block at a time (block_rows x block_classes,
   chosen by the caller through the scratch shape), in a per-thread scratch
   buffer, computed by BLAS gemm from scipy.linalg.cython_blas (scipy's own
   BLAS: nothing to link at build time).  BLAS is column-major: a C-order
   (rows x classes) block is the Fortran matrix block^T = W_blk . X_blk^T,
   so every product below is written for the transposes.  x and weight may
   each be C- or Fortran-ordered (one contiguous axis, any leading stride).
b) Forward.  The (rows x classes) plane is cut into n_groups x n_groups
   tiles (n_groups >= threads, chosen by the caller); threads take tiles
   dynamically, so a thread the OS holds back does not hold up the rest.
   Each tile carries, per row, the online log-sum-exp pair (max, sum) of
   its classes (fx_lse_partial per block, fx_lse_merge across blocks) in a
   per-(group, row) slot, and the target logit is taken as its block
   passes; the slots are merged row by row afterwards.  Extra memory: the scratch (threads x block) and O(groups x
   rows) doubles, never O(rows x classes).
c) Backward.  Each block is computed again and turned, in the scratch, into
   G = dloss/dlogits = scale * (softmax * (1 + 2 z lse) - (1 - eps) onehot
   - eps / C), times the soft-cap derivative; then dx_blk += G . W_blk and
   dweight_blk += G^T . X_blk (gemm, beta = 1) and dbias += column sums of G.
   Thread safety without a (threads x C x D) buffer: the tiles are visited
   in n_groups phases; in phase p, row group a is paired with class group
   (a + p) mod n_groups, so within a phase no two tiles share a row group
   (dx rows) or a class group (dweight rows, dbias); phases are separated
   by the barrier that ends each parallel loop.  Every block's G is used
   for both products: 4 gemms in all (forward, recompute, dx, dweight), one
   more than a path that keeps the logits.
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
from libc.math cimport log
from libc.string cimport memcpy, memset
from scipy.linalg.cython_blas cimport sgemm, dgemm

from fx_rows cimport row_lse_partial, row_sum, fx_lse_merge

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


cdef struct Operand:
    # a read-only matrix (rows x cols) as BLAS sees it
    const void *data
    int row_major        # 1: C-order rows (stride 1 along cols), 0: Fortran order
    int ld               # leading dimension, in items
    Py_ssize_t row_step  # items between consecutive rows (ld or 1)


cdef struct Problem:
    Operand x, weight
    const void *bias     # NULL or (n_classes,)
    int n_hidden
    Py_ssize_t n_rows, n_classes
    int block_rows, block_classes
    int n_groups
    double softcap       # 0: none


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


cdef void logits_block(const Problem *pb, Py_ssize_t r0, int n_rows, Py_ssize_t c0, int n_classes,
                       floating *out) noexcept nogil:
    """out (n_rows x n_classes, C-order) = x[r0:] @ weight[c0:].T + bias[c0:],
    soft-capped when asked.  Fortran: out^T = op(W) (classes x D) . op(X^T)."""
    cdef floating beta = 0
    cdef int r
    cdef const floating *x = rows_of(&pb.x, r0, out)
    cdef const floating *w = rows_of(&pb.weight, c0, out)
    if pb.bias != NULL:
        for r in range(n_rows):
            memcpy(out + <Py_ssize_t>r * n_classes, <const floating *>pb.bias + c0,
                   n_classes * sizeof(floating))
        beta = 1
    elif pb.n_hidden == 0:
        memset(out, 0, <Py_ssize_t>n_rows * n_classes * sizeof(floating))
    if pb.n_hidden > 0:
        gemm(TRANS if pb.weight.row_major else NO_TRANS, NO_TRANS if pb.x.row_major else TRANS,
             n_classes, n_rows, pb.n_hidden, w, pb.weight.ld, x, pb.x.ld, beta, out, n_classes)
    if pb.softcap != 0.0:
        if floating is float:
            fx_softcap_f(out, <Py_ssize_t>n_rows * n_classes, pb.softcap)
        else:
            fx_softcap_d(out, <Py_ssize_t>n_rows * n_classes, pb.softcap)


cdef inline Py_ssize_t group_start(Py_ssize_t n, int group, int n_groups) noexcept nogil:
    return n * group // n_groups


cdef void forward_tile(const Problem *pb, int row_group, int class_group,
                       const index_t *labels, bint has_ignore, long long ignore_index,
                       bint want_logit_sum,
                       double *part_max, double *part_sum,   # OUT (n_rows,) this class group's slots
                       double *part_logit_sum,               # OUT (n_rows,) or NULL
                       double *target,                       # OUT (n_rows,) target logit
                       floating *scratch) noexcept nogil:
    cdef Py_ssize_t row_lo = group_start(pb.n_rows, row_group, pb.n_groups)
    cdef Py_ssize_t row_hi = group_start(pb.n_rows, row_group + 1, pb.n_groups)
    cdef Py_ssize_t cls_lo = group_start(pb.n_classes, class_group, pb.n_groups)
    cdef Py_ssize_t cls_hi = group_start(pb.n_classes, class_group + 1, pb.n_groups)
    cdef Py_ssize_t r0, c0, row
    cdef long long label
    cdef int nr, nc, r
    cdef double block_max, block_sum
    cdef floating *s
    for row in range(row_lo, row_hi):
        part_max[row] = -1.0 / 0.0
        part_sum[row] = 0.0
        if want_logit_sum:
            part_logit_sum[row] = 0.0
    c0 = cls_lo
    while c0 < cls_hi:
        nc = <int>min(<Py_ssize_t>pb.block_classes, cls_hi - c0)
        r0 = row_lo
        while r0 < row_hi:
            nr = <int>min(<Py_ssize_t>pb.block_rows, row_hi - r0)
            logits_block(pb, r0, nr, c0, nc, scratch)
            for r in range(nr):
                row = r0 + r
                s = scratch + <Py_ssize_t>r * nc
                row_lse_partial(s, nc, &block_max, &block_sum)
                fx_lse_merge(&part_max[row], &part_sum[row], block_max, block_sum)
                if want_logit_sum:
                    part_logit_sum[row] += row_sum(s, nc)
                label = labels[row]
                if not (has_ignore and label == ignore_index) and c0 <= label < c0 + nc:
                    target[row] = s[label - c0]
            r0 += nr
        c0 += nc


cdef void backward_tile(const Problem *pb, int row_group, int class_group,
                        const index_t *labels, bint has_ignore, long long ignore_index,
                        const double *row_max, const double *log_sum,   # IN (n_rows,)
                        double smoothing, double z_loss, double grad_scale,
                        floating *dx,          # OUT (n_rows, n_hidden) C-order, accumulated
                        floating *dweight,     # OUT (n_classes, n_hidden) C-order, accumulated
                        double *dbias,         # OUT (n_classes,) accumulated, or NULL
                        floating *scratch) noexcept nogil:
    cdef Py_ssize_t row_lo = group_start(pb.n_rows, row_group, pb.n_groups)
    cdef Py_ssize_t row_hi = group_start(pb.n_rows, row_group + 1, pb.n_groups)
    cdef Py_ssize_t cls_lo = group_start(pb.n_classes, class_group, pb.n_groups)
    cdef Py_ssize_t cls_hi = group_start(pb.n_classes, class_group + 1, pb.n_groups)
    cdef Py_ssize_t r0, c0, row, j
    cdef long long label
    cdef int nr, nc, r
    cdef int n_hidden = pb.n_hidden, ld_out = max(n_hidden, 1)
    cdef double inv_cap = 1.0 / pb.softcap if pb.softcap != 0.0 else 0.0
    cdef double shift = grad_scale * smoothing / pb.n_classes
    cdef double target_scale = grad_scale * (1.0 - smoothing)
    cdef double lse, cap_slope, t
    cdef floating *s
    cdef const floating *x
    cdef const floating *w
    c0 = cls_lo
    while c0 < cls_hi:
        nc = <int>min(<Py_ssize_t>pb.block_classes, cls_hi - c0)
        w = rows_of(&pb.weight, c0, scratch)
        r0 = row_lo
        while r0 < row_hi:
            nr = <int>min(<Py_ssize_t>pb.block_rows, row_hi - r0)
            x = rows_of(&pb.x, r0, scratch)
            logits_block(pb, r0, nr, c0, nc, scratch)
            for r in range(nr):
                row = r0 + r
                s = scratch + <Py_ssize_t>r * nc
                label = labels[row]
                if has_ignore and label == ignore_index:
                    memset(s, 0, nc * sizeof(floating))
                    continue
                lse = row_max[row] + log_sum[row]
                cap_slope = 1.0
                if c0 <= label < c0 + nc:
                    t = s[label - c0] * inv_cap
                    cap_slope = 1.0 - t * t
                if floating is float:
                    fx_grad_row_f(s, nc, row_max[row], log_sum[row],
                                  grad_scale * (1.0 + 2.0 * z_loss * lse), shift, inv_cap)
                else:
                    fx_grad_row_d(s, nc, row_max[row], log_sum[row],
                                  grad_scale * (1.0 + 2.0 * z_loss * lse), shift, inv_cap)
                if c0 <= label < c0 + nc:
                    s[label - c0] = s[label - c0] - <floating>(target_scale * cap_slope)
            if dbias != NULL:
                for r in range(nr):
                    for j in range(nc):
                        dbias[c0 + j] += scratch[<Py_ssize_t>r * nc + j]
            if n_hidden > 0:
                # dx^T (D x rows) += op(W^T) (D x classes) . G^T (classes x rows)
                gemm(NO_TRANS if pb.weight.row_major else TRANS, NO_TRANS, n_hidden, nr, nc,
                     w, pb.weight.ld, scratch, nc, 1, dx + r0 * n_hidden, ld_out)
                # dweight^T (D x classes) += op(X^T) (D x rows) . G (rows x classes)
                gemm(NO_TRANS if pb.x.row_major else TRANS, TRANS, n_hidden, nc, nr,
                     x, pb.x.ld, scratch, nc, 1, dweight + c0 * n_hidden, ld_out)
            r0 += nr
        c0 += nc


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
                floating[:, :, ::1] scratch,      # (n_threads, block_rows, block_classes)
                double[:, :, ::1] partials,       # (3, n_groups, n_rows)
                int n_threads):
    """Fills loss and stats (and the gradients when dx is given); returns
    the sum of the per-row losses, summed serially (the same for any thread
    count)."""
    cdef Problem pb
    cdef Py_ssize_t n_rows = x.shape[0], n_classes = weight.shape[0], row
    cdef int n_groups = partials.shape[1], tile, group, phase
    cdef bint want_grad = dx is not None
    cdef bint want_logit_sum = smoothing != 0.0
    cdef double *part_max = &partials[0, 0, 0] if n_rows > 0 else NULL
    cdef double *part_sum = &partials[1, 0, 0] if n_rows > 0 else NULL
    cdef double *part_logit_sum = &partials[2, 0, 0] if n_rows > 0 else NULL
    cdef double *target = NULL
    cdef double *dbias_ptr = NULL
    cdef double row_max, sum_exp, logit_sum, lse, total = 0.0
    cdef floating *tmp
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
    pb.n_hidden = <int>x.shape[1]
    pb.n_rows = n_rows
    pb.n_classes = n_classes
    pb.block_rows = <int>scratch.shape[1]
    pb.block_classes = <int>scratch.shape[2]
    pb.n_groups = n_groups
    pb.softcap = softcap
    # the target logits are parked in `loss`; the merge reads each before
    # overwriting it with the row's loss
    target = &loss[0]

    with nogil, parallel(num_threads=n_threads):
        tmp = &scratch[threadid(), 0, 0]
        for tile in prange(n_groups * n_groups, schedule='dynamic', chunksize=1):
            forward_tile(&pb, tile // n_groups, tile % n_groups, &labels[0], has_ignore, ignore_index,
                         want_logit_sum, part_max + (tile % n_groups) * n_rows,
                         part_sum + (tile % n_groups) * n_rows,
                         part_logit_sum + (tile % n_groups) * n_rows, target, tmp)

    with nogil:
        for row in range(n_rows):
            row_max = part_max[row]
            sum_exp = part_sum[row]
            logit_sum = part_logit_sum[row] if want_logit_sum else 0.0
            for group in range(1, n_groups):
                fx_lse_merge(&row_max, &sum_exp, part_max[group * n_rows + row],
                             part_sum[group * n_rows + row])
                if want_logit_sum:
                    logit_sum = logit_sum + part_logit_sum[group * n_rows + row]
            stats[0, row] = row_max
            stats[1, row] = log(sum_exp)
            if has_ignore and labels[row] == ignore_index:
                loss[row] = 0.0
                continue
            lse = row_max + stats[1, row]
            # lse - x_t as (max - x_t) + log_sum: see _sparse.pyx
            loss[row] = ((1.0 - smoothing) * ((row_max - target[row]) + stats[1, row])
                         + smoothing * ((row_max - logit_sum / n_classes) + stats[1, row])
                         + z_loss * lse * lse)
            total += loss[row]

    if not want_grad:
        return total
    if dbias is not None:
        dbias_ptr = &dbias[0]
    for phase in range(n_groups):
        with nogil, parallel(num_threads=n_threads):
            tmp = &scratch[threadid(), 0, 0]
            for group in prange(n_groups, schedule='dynamic', chunksize=1):
                backward_tile(&pb, group, (group + phase) % n_groups, &labels[0], has_ignore,
                              ignore_index, &stats[0, 0], &stats[1, 0], smoothing, z_loss, grad_scale,
                              &dx[0, 0] if pb.n_hidden > 0 else NULL,
                              &dweight[0, 0] if pb.n_hidden > 0 else NULL, dbias_ptr, tmp)
    return total
