#!/usr/bin/env bash
# The test suite on a free-threaded CPython, on a Debian 12 machine that can
# reach only PyPI and Debian's archive.  Debian 12 packages no Python 3.13 and
# PyPI ships no interpreters (uv and pyenv download theirs from elsewhere), so
# this builds CPython 3.13 with --disable-gil from Debian 13's source package,
# fetched with apt-get's own lists in a temporary folder (the system's apt
# configuration is left alone).  Slow (the interpreter build is ~15 minutes on
# two cores): not part of .ci/run; the wheel jobs test 3.14t and 3.15t.
# Usage: tools/check_freethreaded.sh [WORK_DIR]   (needs an sdist in build/check_wheels/dist)
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
work="${1:-$(mktemp -d)}"
sdist="$(ls "$root"/build/check_wheels/dist/fastxent-*.tar.gz)"

apt=(-o Dir::Etc::SourceList="$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
     -o Dir::State::Lists="$work/lists" -o Dir::Cache="$work/cache")
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/src"
echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" \
    > "$work/sources.list"
apt-get "${apt[@]}" update
(cd "$work/src" && apt-get "${apt[@]}" source --download-only python3.13 && tar xf python3.13_*.orig.tar.xz)
(cd "$work"/src/Python-3.13.* && ./configure --disable-gil --prefix="$work/python" && make -j"$(nproc)" && make install)

"$work/python/bin/python3.13t" -m venv "$work/venv"
# numpy 2.5 has no 3.13t wheel (pip would compile it): binaries only make pip
# take the newest release that has one
"$work/venv/bin/python" -m pip install --only-binary :all: numpy scipy pytest hypothesis
"$work/venv/bin/python" -m pip install --no-cache-dir --no-deps "$sdist"
mkdir -p "$work/suite"
cp -r tests pyproject.toml "$work/suite/"
cd "$work/suite"
"$work/venv/bin/python" -c 'import sys, fastxent; print(sys.version); fastxent.show_config()'
FASTXENT_EXPECT_OPENMP=1 "$work/venv/bin/python" -m pytest tests -q -p no:cacheprovider
