"""One benchmark cell, (implementation, mode, case, dtype), in a fresh process.

    python bench/cell.py '{"impl": "torch", "mode": "fwd", "n_rows": 32, ...}'

(a "family" other than "sparse" takes its inputs and implementations from
family.py, and a "shape" of any rank; see run.py --family)

prints one JSON line: the median time of the timed calls, their count, the
loss, the extra peak memory, and how busy the other processes kept the CPUs
meanwhile (a contention check).  Extra peak = the process's resident-set
high-water mark (VmHWM) after the warm-up and timed calls, minus its resident
set once the inputs exist and the library is imported; the high-water mark is
reset to the current resident set first (writing 5 to /proc/self/clear_refs),
so that neither the inputs nor import-time transients are counted.
"""
import json
import os
import sys
import time

import numpy as np

from family import FAMILIES

MIB = 1 << 20


def status_bytes(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def reset_peak():
    """True when the kernel let us reset VmHWM to the current RSS."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def busy_ticks():
    """(clock ticks all CPUs spent busy, ticks this process spent) so far."""
    with open("/proc/stat") as stat:
        user, nice, system, idle, iowait, irq, softirq, steal = map(int, stat.readline().split()[1:9])
    times = os.times()
    return (user + nice + system + irq + softirq + steal,
            (times.user + times.system) * os.sysconf("SC_CLK_TCK"))


def time_calls(call, times, min_time, min_reps):
    """One warm-up call, then calls until min_time seconds have gone by (and at
    least min_reps, at most len(times)), their durations written into `times`,
    which is preallocated so that timing allocates nothing the memory
    measurement would see; returns (first loss, the durations in seconds)."""
    loss = call()                       # first call: lazy initialisation
    clock = time.perf_counter
    end = clock() + min_time
    count = 0
    while count < times.size and (count < min_reps or clock() < end):
        start = clock()
        call()
        times[count] = clock() - start
        count += 1
    return loss, times[:count]


def run(spec):
    family = FAMILIES[spec.get("family", "sparse")]
    make = family.impls[spec["impl"]][0]
    shape = tuple(spec.get("shape") or (spec["n_rows"], spec["n_classes"]))
    labels, logits = family.inputs(shape, np.dtype(spec["dtype"]), family.axis)
    call = make(labels, logits, spec["mode"], spec["threads"], spec["floor_library"])
    times = np.full(spec["max_reps"], np.nan)   # written now, so its pages are resident before the baseline
    baseline = status_bytes("VmRSS")
    peak_reset = reset_peak()
    start, ticks = time.perf_counter(), busy_ticks()
    loss, times = time_calls(call, times, spec["min_time"], spec["min_reps"])
    busy_before, own_before = ticks
    busy_after, own_after = busy_ticks()
    elapsed = time.perf_counter() - start
    peak = status_bytes("VmHWM")
    return {
        "median_s": float(np.median(times)),
        "best_s": float(np.min(times)),
        "reps": int(times.size),
        "loss": loss,
        "extra_peak_mib": (peak - baseline) / MIB,
        "peak_reset": peak_reset,
        # CPU used by other processes while this cell ran, in cores (1.0 = one core)
        "other_cpus": max(0.0, (busy_after - busy_before) - (own_after - own_before))
        / os.sysconf("SC_CLK_TCK") / elapsed,
        "logits_mib": logits.nbytes / MIB,
    }


if __name__ == "__main__":
    print(json.dumps(run(json.loads(sys.argv[1]))))
