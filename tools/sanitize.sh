#!/usr/bin/env bash
# Builds fastxent's kernels with AddressSanitizer + UndefinedBehaviorSanitizer
# (FASTXENT_SANITIZE=address,undefined, see setup.py) in a fresh virtual
# environment and runs the test suite under them.  Fails on a test failure
# and on any sanitizer report, even one a test process survived.
#
# Not run: tests/test_leaks.py and the fused linear memory test (ASan's
# quarantine holds freed memory on purpose and its shadow memory adds an
# eighth of every allocation, so RSS measurements mean nothing here) and the PyTorch comparisons (torch is not
# installed here: they test numbers, not memory, on paths the reference tests
# already cover).  Takes a few minutes, most of it the three builds.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# A copy of the sources without build products: the sanitized objects must
# not land in the checkout's build/, where a normal build would reuse them.
mkdir "$work/src"
tar -C "$root" --exclude=./.git --exclude=./build --exclude='*.so' -cf - . | tar -C "$work/src" -xf -

python3 -m venv "$work/venv"
# shellcheck disable=SC1091
. "$work/venv/bin/activate"
python -m pip install --quiet --upgrade pip
python -m pip install --quiet numpy pytest hypothesis
FASTXENT_SANITIZE=address,undefined python -m pip install --quiet "$work/src"

# Every compiled module must carry the instrumentation, or "no report" means nothing.
site="$(python -c 'import importlib.util as u, os; print(os.path.dirname(u.find_spec("fastxent").origin))')"
case "$site" in "$work/venv/"*) ;; *) echo "sanitize.sh: fastxent imported from $site, not the venv" >&2; exit 1;; esac
for so in "$site"/*.so; do
    symbols="$(nm -D "$so")"
    for symbol in __asan_init __ubsan_handle; do
        if [[ "$symbols" != *"$symbol"* ]]; then
            echo "sanitize.sh: $so is not instrumented ($symbol missing)" >&2
            exit 1
        fi
    done
done

# The ASan runtime must be loaded before CPython's allocator; CPython's own
# allocations at exit look like leaks, so leak detection is off.  stderr is
# not captured by pytest (--capture=sys) so a report that aborts the process
# still reaches the log.
sanitized() {
    LD_PRELOAD="$("${CC:-gcc}" -print-file-name=libasan.so)" \
    ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    "$@"
}
log="$work/pytest.log"
status=0
(cd "$work/src" && sanitized python -m pytest tests -q -p no:cacheprovider --capture=sys \
    --ignore=tests/test_leaks.py \
    --deselect tests/test_linear.py::test_extra_memory_is_a_small_fraction_of_the_logits) 2>&1 | tee "$log" || status=$?

if grep -qE "ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer" "$log"; then
    echo "sanitize.sh: sanitizer report(s) above" >&2
    exit 1
fi
if [ "$status" -ne 0 ]; then
    echo "sanitize.sh: the test suite failed under the sanitizers (exit $status)" >&2
    exit "$status"
fi
levels="$(sanitized python -c 'import fastxent; print(", ".join(fastxent.config()["isa_supported"]))')"
echo "sanitize.sh: kernels at levels $levels tested: no sanitizer report"
