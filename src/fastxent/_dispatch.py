"""Picks the instruction-set level of the compiled kernels, once at import.

setup.py builds each kernel module once per level (fastxent._sparse_avx512,
_sparse_avx2, _sparse_baseline on x86-64; only _baseline elsewhere).  The best
level the CPU and OS support is used; FASTXENT_ISA=baseline|avx2|avx512 forces a
lower one (asking for a level the CPU lacks raises, rather than crashing with an
illegal instruction later).  The Python API reaches the kernels through
`kernels.<name>`, looked up at call time, so the tests can run every level.
"""
import importlib
import os
import types

from . import _cpu

LEVELS = ("avx512", "avx2", "baseline")
# the per-level kernel modules, by the attribute name the API uses
MODULES = {"sparse": "_sparse",
           "sigmoid": "_sigmoid",
           "softmax": "_softmax",
           "objective": "_objective"}

kernels = types.SimpleNamespace()
LEVEL = None


def built_levels():
    """Levels whose modules exist in this install, best first."""
    found = []
    for level in LEVELS:
        try:
            importlib.import_module(f"fastxent._sparse_{level}")
        except ImportError:
            continue
        found.append(level)
    return found


def supported_levels():
    """Levels built here that this CPU can run, best first."""
    built = built_levels()
    return [level for level in _cpu.supported_isas() if level in built]


def use_level(level=None):
    """Point `kernels` at the modules built for `level` (None: the best)."""
    global LEVEL
    supported = supported_levels()
    if level is None:
        level = supported[0]
    elif level not in LEVELS:
        raise ValueError(f"FASTXENT_ISA must be one of {', '.join(LEVELS)}, got {level!r}")
    elif level not in supported:
        raise ValueError(f"FASTXENT_ISA={level} is not available here: this CPU and build "
                         f"support {', '.join(supported)}")
    for attr, module in MODULES.items():
        setattr(kernels, attr, importlib.import_module(f"fastxent.{module}_{level}"))
    LEVEL = level


use_level(os.environ.get("FASTXENT_ISA") or None)
