"""Ctrl-C during a call: the kernels run without the GIL and are not
interruptible, so the KeyboardInterrupt arrives when the call returns (or
before it starts); never in the middle of a write.  So an interrupted call
leaves its inputs unchanged and its out= buffer either untouched or complete.

In a fresh process (the SIGINT must not reach pytest), for every public
function, with the signal sent at several points of a ~32 MiB call.  The
multi-GiB measurement is tools/interrupt_demo.py.
"""
import pytest

from fresh_process import run_script
from public_calls import IDS, REGISTRY

SCRIPT = """
import os, signal, sys, threading, time
import numpy as np
from public_calls import REGISTRY, holds

call = next(c for c in REGISTRY if c.name == sys.argv[1])
args = call.make(np.random.default_rng(0), 2048, 4096, np.float32)
saved = {name: args[name].copy() for name in call.float_inputs}
expected = call(dict(args))
if call.out:   # which result the out= buffer holds
    probe = np.empty_like(args[call.in_place])
    held = next(i for i, result in enumerate(call({**args, call.out: probe})) if holds(result, probe))
start = time.perf_counter()
call(dict(args))
duration = time.perf_counter() - start
interrupts = 0
for step in range(12):
    delay = duration * step / 8          # before, during and after the kernel
    if call.out:
        args[call.out] = np.full_like(args[call.in_place], np.nan)
    timer = threading.Timer(delay, os.kill, (os.getpid(), signal.SIGINT))
    try:
        timer.start()
        call(args)
        timer.join()
        time.sleep(0.05)              # the signal is handled here if the call ended first
    except KeyboardInterrupt:
        timer.join()
        interrupts += 1
    for name in call.float_inputs:
        np.testing.assert_array_equal(args[name], saved[name])
    if call.out:
        out = args[call.out]
        if not np.isnan(out).all():
            np.testing.assert_array_equal(out.reshape(np.shape(expected[held])), expected[held])
print(interrupts, f"{duration:.3f}")
"""


@pytest.mark.slow
@pytest.mark.parametrize("call", REGISTRY, ids=IDS)
def test_interrupt_leaves_nothing_half_written(call):
    stdout = run_script(SCRIPT, call.name)
    assert stdout.split()[0] == "12", f"a Ctrl-C was lost: {stdout}"
