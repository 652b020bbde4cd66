"""Each logits form of the softmax family, loss only, on a (2048, 32768)
float32 batch in a fresh process: the peak resident memory beyond the inputs
grows by O(rows) (per-row losses, per-thread scratch), never O(rows x classes)."""
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import numpy as np
    import fastxent as fx

    def peak_kib():
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])

    n_rows, n_classes = 2048, 32768
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((n_rows, n_classes), dtype=np.float32)
    targets = rng.random((n_rows, n_classes), dtype=np.float32)
    labels = rng.integers(0, n_classes, n_rows)
    pytorch_layout = logits.reshape(16, 128, n_classes).transpose(0, 2, 1)   # (N, C, d) view
    pytorch_labels = labels.reshape(16, 128)
    forms = {
        "softmax_cross_entropy_with_logits": lambda: fx.softmax_cross_entropy_with_logits(targets, logits),
        "softmax_cross_entropy_with_logits axis=1": lambda: fx.softmax_cross_entropy_with_logits(
            targets.reshape(16, 128, n_classes).transpose(0, 2, 1), pytorch_layout, axis=1),
        "cross_entropy (N, C, d)": lambda: fx.cross_entropy(pytorch_layout, pytorch_labels),
        "categorical_crossentropy": lambda: fx.categorical_crossentropy(targets, logits, from_logits=True),
        "categorical_focal_crossentropy": lambda: fx.categorical_focal_crossentropy(
            targets, logits, from_logits=True),
        "sparse_categorical_crossentropy": lambda: fx.sparse_categorical_crossentropy(
            labels, logits, from_logits=True),
        "sparse_categorical_focal_crossentropy": lambda: fx.sparse_categorical_focal_crossentropy(
            labels, logits, from_logits=True),
        "logsumexp": lambda: fx.logsumexp(logits),
        "logsumexp axis=1": lambda: fx.logsumexp(pytorch_layout, axis=1),
        "target_log_prob": lambda: fx.target_log_prob(labels, logits),
    }
    for name, call in forms.items():
        before = peak_kib()
        call()
        print(f"{name}\\t{peak_kib() - before}")
""")

# per-row float64 losses and labels (2048 x 8 B each), per-thread scratch,
# numpy's small temporaries: a few MiB at most; one (rows x classes) float32
# array would be 256 MiB
BOUND_KIB = 8 * 1024


@pytest.mark.slow
def test_loss_only_forms_need_no_rows_x_classes_memory():
    pytest.importorskip("resource")
    run = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    growth = dict(line.rsplit("\t", 1) for line in run.stdout.strip().splitlines())
    assert len(growth) == 10
    for name, kib in growth.items():
        assert int(kib) < BOUND_KIB, f"{name}: peak memory grew by {int(kib) / 1024:.1f} MiB"
