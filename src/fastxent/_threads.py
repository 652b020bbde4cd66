"""Turns the user's n_threads into the team size a kernel call uses."""
import numbers

from . import _cpu

# Below this many logits a call runs on one thread: an OpenMP team costs a few
# microseconds to wake, more than the whole computation.
SERIAL_BELOW = 1 << 15


def default_threads():
    """OpenMP's default: OMP_NUM_THREADS, threadpoolctl's limit, or the core count."""
    return max(1, _cpu.omp_max_threads())


def resolve(n_threads, work=None):
    """n_threads=None -> OpenMP's default; a positive int is used as given.

    `work` is the number of values the call touches; small calls run serially.
    """
    if n_threads is None:
        n = default_threads()
    elif isinstance(n_threads, numbers.Integral) and not isinstance(n_threads, bool):
        if n_threads < 1:
            raise ValueError(f"n_threads must be a positive integer or None, got {n_threads}")
        n = int(n_threads)
    else:
        raise TypeError(f"n_threads must be a positive integer or None, got {type(n_threads).__name__}")
    if work is not None and work < SERIAL_BELOW:
        return 1
    return n
