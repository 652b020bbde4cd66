"""Runs a test script in a fresh Python process that imports what the tests
import (fastxent as installed or on PYTHONPATH, and tests/ for public_calls)."""
import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def run_script(script, *argv, timeout=600):
    """stdout of `python -c script argv...`; raises AssertionError with its stderr if it fails."""
    path = os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, "-c", script, *map(str, argv)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": path}, timeout=timeout)
    assert done.returncode == 0, done.stderr
    return done.stdout
