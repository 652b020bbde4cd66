"""Keeps scipy's BLAS single-threaded while the fused kernels call it from
their own OpenMP threads (placeholder)."""
import contextlib


@contextlib.contextmanager
def single_threaded():
    yield
