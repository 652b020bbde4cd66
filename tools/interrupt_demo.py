"""What Ctrl-C does to a long fastxent call (README, "Reliability").

    PYTHONPATH=src python tools/interrupt_demo.py [GiB] [n_threads]

Builds float32 logits of about GiB gibibytes (default 4), times the loss
and the in-place loss-and-gradient call, then repeats each with a SIGINT
(what Ctrl-C sends) 0.1 s into the call, and reports how long the
KeyboardInterrupt took to arrive and whether anything was left corrupted:
the logits of the loss call must be bit-for-bit unchanged (CRC-32), the
in-place gradient complete (sampled rows against a float64 reference).
"""
import os
import signal
import sys
import threading
import time
import zlib
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import fastxent  # noqa: E402
import reference as ref  # noqa: E402

N_CLASSES = 32_768
SAMPLE_ROWS = 8


def interrupted(call, delay=0.1):
    """Runs call() with a SIGINT sent `delay` s in; returns (seconds from the
    signal to the KeyboardInterrupt, or None if it never came; call's result)."""
    sent = []

    def fire():
        time.sleep(delay)
        sent.append(time.perf_counter())
        os.kill(os.getpid(), signal.SIGINT)

    timer = threading.Thread(target=fire)
    timer.start()
    result = None
    try:
        result = call()
        while not sent:           # a call shorter than the delay: wait for the signal here
            time.sleep(0.01)
        time.sleep(0.05)
    except KeyboardInterrupt:
        caught = time.perf_counter()
        timer.join()
        return caught - sent[0], result
    timer.join()
    return None, result


def main(gib=4.0, n_threads=None):
    n_rows = int(gib * 2**30 / 4 / N_CLASSES)
    rng = np.random.default_rng(0)
    logits = np.empty((n_rows, N_CLASSES), dtype=np.float32)
    for start in range(0, n_rows, 4096):      # in blocks: no float64 temporary of the whole array
        logits[start:start + 4096] = rng.standard_normal((min(4096, n_rows - start), N_CLASSES),
                                                         dtype=np.float32)
    labels = rng.integers(0, N_CLASSES, n_rows)
    print(f"fastxent {fastxent.__version__} ({fastxent.config()['isa']}), n_threads={n_threads}: "
          f"logits {n_rows:,} x {N_CLASSES:,} float32 = {logits.nbytes / 2**30:.2f} GiB")

    loss = fastxent.sparse_softmax_cross_entropy_with_logits
    loss_and_grad = fastxent.sparse_softmax_cross_entropy_with_logits_and_grad
    start = time.perf_counter()
    loss(labels, logits, n_threads=n_threads)
    print(f"loss call: {time.perf_counter() - start:.2f} s")

    crc = zlib.crc32(logits)
    latency, _ = interrupted(lambda: loss(labels, logits, n_threads=n_threads))
    print(f"loss call, SIGINT 0.1 s in: KeyboardInterrupt {latency:.2f} s after the signal; "
          f"logits unchanged: {zlib.crc32(logits) == crc}")

    rows = rng.choice(n_rows, SAMPLE_ROWS, replace=False)
    saved = logits[rows].copy()
    start = time.perf_counter()
    latency, _ = interrupted(lambda: loss_and_grad(labels, logits, out=logits, n_threads=n_threads))
    _, _, expected = ref.sparse_xent(labels[rows], saved)
    complete = np.allclose(logits[rows], expected, rtol=2e-5, atol=2e-6)
    print(f"in-place loss and gradient, SIGINT 0.1 s in: KeyboardInterrupt {latency:.2f} s after the "
          f"signal; gradient complete in {SAMPLE_ROWS} sampled rows: {complete}")


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 4.0,
         int(sys.argv[2]) if len(sys.argv) > 2 else None)
