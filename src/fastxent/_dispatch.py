"""Picks, once at import, the instruction-set level of the compiled kernels.

setup.py builds each kernel module once per level (fastxent._sparse_avx512,
_sparse_avx2, _sparse_baseline on x86-64; only _baseline elsewhere).  The best
level the CPU and OS support is used; FASTXENT_ISA=baseline|avx2|avx512 forces a
lower one (asking for a level the CPU lacks raises, rather than crashing with an
illegal instruction later).
"""
import importlib
import os

from . import _cpu

LEVELS = ("avx512", "avx2", "baseline")


def _built_levels():
    """Levels whose modules exist in this install, best first."""
    found = []
    for level in LEVELS:
        try:
            importlib.import_module(f"fastxent._sparse_{level}")
        except ImportError:
            continue
        found.append(level)
    return found


def choose_level(requested=None):
    supported = [level for level in _cpu.supported_isas() if level in _built_levels()]
    if requested is None:
        return supported[0]
    if requested not in LEVELS:
        raise ValueError(f"FASTXENT_ISA must be one of {', '.join(LEVELS)}, got {requested!r}")
    if requested not in supported:
        raise ValueError(f"FASTXENT_ISA={requested} is not available here: this CPU and build "
                         f"support {', '.join(supported)}")
    return requested


def load(module, level):
    """The kernel module `module` (for example "_sparse") compiled for `level`."""
    return importlib.import_module(f"fastxent.{module}_{level}")


LEVEL = choose_level(os.environ.get("FASTXENT_ISA") or None)
sparse = load("_sparse", LEVEL)
