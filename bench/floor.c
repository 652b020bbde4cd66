/* The benchmark's floor: the least time any kernel can take, reading the
 * logits once (and, for the gradient, writing a buffer of the same size).
 *
 * Built by floor.py with the system compiler at -O3 -march=native -fopenmp,
 * independently of fastxent.  `omp simd` lets gcc vectorize the reduction
 * (it may reorder the additions; the sum is only returned so that the loop is
 * not optimised away).  Rows are ignored: a flat loop over rows x classes
 * values split statically between the threads, serial when n_threads is 1
 * (no team to wake).
 */
#include <stddef.h>

#define READ_ONCE(name, T)                                                   \
    double name(const T *x, size_t n, int n_threads)                        \
    {                                                                       \
        T total = 0;                                                        \
        if (n_threads <= 1) {                                               \
            _Pragma("omp simd reduction(+:total)")                          \
            for (size_t i = 0; i < n; i++) total += x[i];                   \
        } else {                                                            \
            _Pragma("omp parallel for simd num_threads(n_threads) schedule(static) reduction(+:total)") \
            for (size_t i = 0; i < n; i++) total += x[i];                   \
        }                                                                   \
        return (double)total;                                               \
    }

/* reads x and writes out (as a gradient pass must): out[i] = x[i] */
#define READ_WRITE(name, T)                                                  \
    double name(const T *x, T *out, size_t n, int n_threads)                \
    {                                                                       \
        if (n_threads <= 1) {                                               \
            _Pragma("omp simd")                                             \
            for (size_t i = 0; i < n; i++) out[i] = x[i];                   \
        } else {                                                            \
            _Pragma("omp parallel for simd num_threads(n_threads) schedule(static)") \
            for (size_t i = 0; i < n; i++) out[i] = x[i];                   \
        }                                                                   \
        return n ? (double)out[n - 1] : 0.0;                                \
    }

READ_ONCE(floor_read_f32, float)
READ_ONCE(floor_read_f64, double)
READ_WRITE(floor_read_write_f32, float)
READ_WRITE(floor_read_write_f64, double)
