"""What the installed build is: OpenMP as the builder expected, typing stubs
that match the compiled modules, and (in a checkout) a single wheels workflow."""
import ast
import importlib
import importlib.metadata
import os
import sysconfig
from pathlib import Path

import pytest

import fastxent as fx

PACKAGE = Path(fx.__file__).parent
ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif("FASTXENT_EXPECT_OPENMP" not in os.environ,
                    reason="set FASTXENT_EXPECT_OPENMP=1 (or 0) to check how this build was made")
def test_openmp_as_the_build_expected():
    # cibuildwheel and tools/check_wheels.sh set it: a wheel whose compiler
    # probe silently fell back to serial kernels fails here
    assert fx.config()["openmp"] is (os.environ["FASTXENT_EXPECT_OPENMP"] == "1")


def test_installed_metadata_has_the_single_sourced_version():
    try:
        dist = importlib.metadata.distribution("fastxent")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("fastxent is imported from a source tree, not installed")
    if Path(dist.locate_file("fastxent/__init__.py")).resolve() != Path(fx.__file__).resolve():
        pytest.skip("the installed fastxent is not the one imported")
    # setuptools reads the version from fastxent/_version.py at build time
    assert dist.version == fx.__version__ == fx.config()["version"]


def stub_names(path):
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign):
            names.add(node.target.id)
    return names


STUBS = sorted(PACKAGE.glob("_*.pyi"))


def test_typing_files_are_installed():
    assert (PACKAGE / "py.typed").is_file() and (PACKAGE / "_cpu.pyi").is_file()


@pytest.mark.parametrize("stub", STUBS, ids=lambda path: path.name)
def test_stub_names_match_the_compiled_module(stub):
    module = importlib.import_module(f"fastxent.{stub.stem}")
    assert sysconfig.get_config_var("EXT_SUFFIX") in Path(module.__file__).name
    public = {name for name in dir(module) if not name.startswith("_")}
    assert stub_names(stub) == public


@pytest.mark.skipif(not (ROOT / "wheels.yml").exists(), reason="runs in a source checkout only")
def test_github_runs_the_same_wheels_workflow():
    # The design keeps wheels.yml at the root; GitHub runs only regular files
    # in .github/workflows/ (a symlink there is rejected as invalid YAML), so
    # that one is a copy, and must stay byte-identical.
    copy = ROOT / ".github" / "workflows" / "wheels.yml"
    assert not copy.is_symlink()
    assert copy.read_bytes() == (ROOT / "wheels.yml").read_bytes(), \
        "edit wheels.yml, then: cp wheels.yml .github/workflows/wheels.yml"
