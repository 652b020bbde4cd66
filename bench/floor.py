"""Builds bench/floor.c with the system C compiler and loads it with ctypes."""
import ctypes
import os
import subprocess
from pathlib import Path

SOURCE = Path(__file__).with_name("floor.c")
FLAGS = ["-O3", "-march=native", "-fopenmp", "-shared", "-fPIC"]


def build(directory):
    """Compiles floor.c into `directory`; returns the library's path."""
    library = Path(directory) / "libfloor.so"
    compiler = os.environ.get("CC", "gcc")
    subprocess.run([compiler, *FLAGS, str(SOURCE), "-o", str(library)], check=True)
    return library


def load(library):
    lib = ctypes.CDLL(str(library))
    size_t, c_int, c_double, c_void_p = ctypes.c_size_t, ctypes.c_int, ctypes.c_double, ctypes.c_void_p
    for suffix in ("f32", "f64"):
        read = getattr(lib, f"floor_read_{suffix}")
        read.argtypes, read.restype = [c_void_p, size_t, c_int], c_double
        write = getattr(lib, f"floor_read_write_{suffix}")
        write.argtypes, write.restype = [c_void_p, c_void_p, size_t, c_int], c_double
    return lib
