"""100,000 calls of each public function leave the resident memory within
1 MiB of where it was after the first 1,000 (in a fresh process, so nothing
else the suite allocates moves it).  Valid calls, with out= where the
function has it, and calls that raise: error paths must free what they took."""
import pytest

from fresh_process import run_script
from public_calls import IDS, REGISTRY

CALLS = 100_000
WARM_UP = 1_000
SLACK = 1 << 20

SCRIPT = """
import os, sys
import numpy as np
from public_calls import REGISTRY, documented_errors, with_options

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

call = next(c for c in REGISTRY if c.name == sys.argv[1])
calls, warm_up = int(sys.argv[2]), int(sys.argv[3])
variants = []
for dtype, pick in ((np.float32, 1), (np.float64, -2)):
    args = with_options(call.make(np.random.default_rng(0), 5, 7, dtype), call.options(7, dtype)[pick])
    if call.out:
        args[call.out] = np.empty_like(args[call.in_place])
    variants.append((args, None))
bad = documented_errors(call)
valid = {**call.make(np.random.default_rng(0), 5, 7, np.float32)}
variants += [(case.mutate(dict(valid)), case.exception) for case in bad[:: max(1, len(bad) // 4)]]

def one(i):
    args, exception = variants[i % len(variants)]
    if exception is None:
        call(args)
    else:
        try:
            call(args)
        except exception:
            pass
        else:
            raise AssertionError("no error raised")

for i in range(warm_up):
    one(i)
before = rss()
for i in range(warm_up, calls):
    one(i)
print(rss() - before)
"""


@pytest.mark.slow
@pytest.mark.parametrize("call", REGISTRY, ids=IDS)
def test_no_leak_over_100k_calls(call):
    growth = int(run_script(SCRIPT, call.name, CALLS, WARM_UP).split()[-1])
    assert growth <= SLACK, f"RSS grew by {growth} bytes over {CALLS - WARM_UP} calls of {call.name}"
