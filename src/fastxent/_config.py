"""fastxent.show_config(): what this install was built with and uses."""
from . import _cpu, _dispatch, _threads
from ._version import __version__

SIMD_WIDTH_BITS = {"baseline": "128 (SSE2 on x86-64, NEON on arm64)", "avx2": "256 (AVX2 + FMA)",
                   "avx512": "512 (AVX-512 F/DQ/BW/VL)"}


def config():
    """The build and runtime configuration as a dict."""
    return {
        "version": __version__,
        "openmp": _cpu.openmp_enabled(),
        "default_threads": _threads.default_threads(),
        "compiler": _cpu.compiler(),
        "isa": _dispatch.LEVEL,
        "simd_width_bits": SIMD_WIDTH_BITS[_dispatch.LEVEL],
        "isa_supported": _dispatch.supported_levels(),
    }


def show_config():
    """Print the version, OpenMP, default thread count, compiler and the
    instruction set the kernels run with."""
    for key, value in config().items():
        print(f"{key:>16}: {value}")
