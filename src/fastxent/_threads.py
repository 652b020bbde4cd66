"""Turns the user's n_threads into the team size a kernel call uses."""
import numbers

from . import _cpu

# Below this many values a call runs on one thread: waking an OpenMP team
# costs a few microseconds, more than the work it would share.
SERIAL_BELOW = 1 << 13


def default_threads():
    """OpenMP's default: OMP_NUM_THREADS, threadpoolctl's limit, or the core count."""
    return max(1, _cpu.omp_max_threads())


def resolve(n_threads, work=None):
    """n_threads=None -> OpenMP's default; a positive int is used as given,
    except that calls touching fewer than SERIAL_BELOW values (`work`) run
    on one thread."""
    if n_threads is not None and not (type(n_threads) is int and n_threads >= 1):   # the common case, fast
        if isinstance(n_threads, bool) or not isinstance(n_threads, numbers.Integral):
            raise TypeError(f"n_threads must be a positive integer or None, got {type(n_threads).__name__}")
        if n_threads < 1:
            raise ValueError(f"n_threads must be a positive integer or None, got {n_threads}")
    if work is not None and work < SERIAL_BELOW:
        return 1
    return default_threads() if n_threads is None else int(n_threads)
