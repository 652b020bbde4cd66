"""No partial writes: a call that raises leaves every `out=` buffer and every
input (in-place logits included) exactly as it was, for every documented
error of every public function (tests/public_calls.py)."""
import numpy as np
import pytest

from public_calls import REGISTRY, documented_errors

CASES = [(call, case, mode) for call in REGISTRY for case in documented_errors(call)
         for mode in (("no out", "out buffer", "in place") if call.out else ("no out",))]
IDS = [f"{call.name}-{case.what}-{mode}" for call, case, mode in CASES]


def as_bytes(x):
    return np.ascontiguousarray(x).view(np.uint8).copy() if isinstance(x, np.ndarray) else None


@pytest.mark.parametrize("call, case, mode", CASES, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_error_writes_nothing(call, case, mode, dtype):
    args = call.make(np.random.default_rng(3), 6, 5, dtype)
    if mode == "out buffer":
        args[call.out] = np.full(args[call.in_place].shape, 7.0, dtype)
    elif mode == "in place":
        args[call.out] = args[call.in_place]
    buffers = [args[call.out]] if mode != "no out" else []
    args = case.mutate(args)
    buffers += [args[name] for name in (*call.float_inputs, *call.targets)] + [args.get(call.out)]
    saved = [as_bytes(x) for x in buffers]
    with pytest.raises(case.exception, match=case.match):
        call(args)
    for buffer, before in zip(buffers, saved):
        if before is not None:
            np.testing.assert_array_equal(as_bytes(buffer), before)
