# cython: language_level=3
"""What this CPU can run and how the package was built (baseline code only)."""

cdef extern from "fx_cpu.h" nogil:
    int fx_openmp_enabled()
    int fx_omp_max_threads()
    int fx_cpu_has_avx2_fma()
    int fx_cpu_has_avx512()
    const char *fx_compiler()
    int fx_is_x86()


def openmp_enabled():
    return bool(fx_openmp_enabled())


def omp_max_threads():
    """OpenMP's default team size: OMP_NUM_THREADS, omp_set_num_threads
    (threadpoolctl) or the number of cores; 1 without OpenMP."""
    return fx_omp_max_threads()


def supported_isas():
    """Instruction-set levels the kernels were built for that this CPU and
    OS can run, best first."""
    levels = []
    if fx_is_x86():
        if fx_cpu_has_avx512():
            levels.append("avx512")
        if fx_cpu_has_avx2_fma():
            levels.append("avx2")
    levels.append("baseline")
    return levels


def compiler():
    return fx_compiler().decode()
