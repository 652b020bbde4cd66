"""python -m fastxent.demo: the loss of a large-vocabulary batch, straight
from integer labels, and what the one-hot route would have cost."""
import time

import numpy as np

import fastxent


def main(n_rows=1024, n_classes=128_256):
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((n_rows, n_classes), dtype=np.float32)
    labels = rng.integers(0, n_classes, n_rows)
    fastxent.sparse_softmax_cross_entropy_with_logits(labels, logits, reduction="mean")  # warm-up
    start = time.perf_counter()
    loss = fastxent.sparse_softmax_cross_entropy_with_logits(labels, logits, reduction="mean")
    elapsed = time.perf_counter() - start
    start = time.perf_counter()
    _, grad = fastxent.sparse_softmax_cross_entropy_with_logits_and_grad(labels, logits, reduction="mean",
                                                                         out=logits)
    elapsed_grad = time.perf_counter() - start
    mib = n_rows * n_classes * 4 / 2**20
    config = fastxent.config()
    print(f"fastxent {fastxent.__version__} ({config['isa']}, {config['default_threads']} threads)")
    print(f"batch: {n_rows} rows x {n_classes:,} classes, float32 logits ({mib:,.0f} MiB)")
    print(f"mean cross-entropy: {float(loss):.6f}  (log({n_classes}) = {np.log(n_classes):.6f} "
          f"for random logits)")
    print(f"loss: {elapsed * 1e3:.1f} ms, extra memory {n_rows * 8 / 1024:.0f} KiB (one float64 per row)")
    print(f"loss + gradient written in place over the logits: {elapsed_grad * 1e3:.1f} ms, no extra "
          f"(rows x classes) memory (gradient row sums ~ {abs(float(grad[0].sum())):.1e})")
    print(f"the one-hot route: {mib:,.0f} MiB of one-hot labels + {mib:,.0f} MiB of softmax "
          f"+ {mib:,.0f} MiB of log-probabilities = {3 * mib:,.0f} MiB of temporaries")


if __name__ == "__main__":
    main()
