"""Build of fastxent's compiled kernels.

Every kernel module in pyx/ (all but _cpu.pyx) is cythonized once and then
compiled once per instruction-set level: on x86-64 `baseline` (SSE2, runs
anywhere), `avx2` (AVX2 + FMA) and `avx512` (F/DQ/BW/VL); elsewhere (arm64,
where NEON is the baseline) only `baseline`.  Each level becomes its own
extension, fastxent.<module>_<level>, through a generated two-line C file that
renames the module's init function; fastxent/_dispatch.py imports the best
level the running CPU supports.  One wheel therefore runs everywhere and at
full SIMD width here.

Environment:
  FASTXENT_NO_OPENMP=1     build without OpenMP (serial kernels)
  FASTXENT_NATIVE=1        add -march=native (local builds only: the result
                           does not run on older CPUs)
  FASTXENT_BUILD_LEVELS=baseline,avx512
                           build only those levels (faster development builds;
                           baseline is always built)
  FASTXENT_SANITIZE=address,undefined
                           build with those sanitizers (-O1, frame pointers)
"""
import os
import platform
import shlex
import sys
import tempfile
import textwrap
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
PYX = HERE / "pyx"
GEN = HERE / "build" / "fastxent_gen"

# Levels by compiler family.  Windows flags are MSVC's (/arch implies the
# lower levels; MSVC has no FMA switch, /arch:AVX2 allows it).
ISA_FLAGS_UNIX = {
    "baseline": [],
    "avx2": ["-mavx2", "-mfma"],
    "avx512": ["-mavx2", "-mfma", "-mavx512f", "-mavx512dq", "-mavx512bw", "-mavx512vl"],
}
ISA_FLAGS_MSVC = {"baseline": [], "avx2": ["/arch:AVX2"], "avx512": ["/arch:AVX512"]}

OPENMP_PROBE = textwrap.dedent(
    """
    #include <omp.h>
    int main(void) {
        int n = 0;
        #pragma omp parallel reduction(+:n)
        n += 1;
        return n > 0 ? 0 : 1;
    }
    """
)


def env_flag(name):
    return os.environ.get(name, "").strip() not in ("", "0", "false", "no")


def targets_x86():
    archflags = os.environ.get("ARCHFLAGS", "")  # macOS cross builds (cibuildwheel)
    if archflags:
        return "x86_64" in archflags and "arm64" not in archflags
    return platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")


class BuildExt(build_ext):
    """Probes the compiler for OpenMP and flags, then builds every level."""

    def finalize_options(self):
        super().finalize_options()
        if self.parallel is None:
            self.parallel = os.cpu_count() or 1

    def try_compile(self, source, compile_args, link_args=()):
        """True when the active compiler builds and links `source` with those flags."""
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / "probe.c"
            src.write_text(source)
            try:
                objects = self.compiler.compile([str(src)], output_dir=tmp, extra_postargs=list(compile_args))
                # distutils links executables without LDFLAGS (only shared
                # objects get them), yet that is where -L for Homebrew's
                # libomp is given on macOS: add them, as the real link will
                link_env = [] if self.compiler.compiler_type == "msvc" else shlex.split(
                    os.environ.get("LDFLAGS", ""))
                self.compiler.link_executable(objects, "probe", output_dir=tmp,
                                              extra_postargs=list(link_args) + list(compile_args) + link_env)
            except Exception:
                return False
        return True

    def openmp_flags(self):
        if env_flag("FASTXENT_NO_OPENMP"):
            print("fastxent: FASTXENT_NO_OPENMP is set: building serial kernels")
            return [], []
        if self.compiler.compiler_type == "msvc":
            candidates = [(["/openmp"], [])]
        else:
            candidates = [(["-fopenmp"], ["-fopenmp"]),
                          (["-Xpreprocessor", "-fopenmp"], ["-lomp"])]
        for cflags, lflags in candidates:
            if self.try_compile(OPENMP_PROBE, cflags, lflags):
                print(f"fastxent: OpenMP enabled with {' '.join(cflags)}")
                return cflags, lflags
        print("fastxent: WARNING: no working OpenMP found; building serial kernels "
              "(correct, but single-threaded)", file=sys.stderr)
        return [], []

    def build_extensions(self):
        msvc = self.compiler.compiler_type == "msvc"
        omp_c, omp_l = self.openmp_flags()
        if msvc:
            base = ["/O2", "/fp:precise"]
        else:
            # -fopenmp-simd: honour `#pragma omp simd` (exact max reductions)
            # even in serial builds; it needs no OpenMP runtime
            base = ["-O3", "-fno-math-errno", "-fno-trapping-math", "-fopenmp-simd", "-ffp-contract=fast"]
            if env_flag("FASTXENT_NATIVE"):
                base.append("-march=native")
            sanitize = os.environ.get("FASTXENT_SANITIZE", "").strip()
            if sanitize:
                base = ["-O1", "-g", "-fno-omit-frame-pointer", f"-fsanitize={sanitize}",
                        "-fno-sanitize-recover=all", "-fno-math-errno", "-fno-trapping-math", "-fopenmp-simd"]
                omp_l = omp_l + [f"-fsanitize={sanitize}"]
        isa_flags = ISA_FLAGS_MSVC if msvc else ISA_FLAGS_UNIX
        probe = "int main(void) { return 0; }\n"
        for ext in self.extensions:
            level = getattr(ext, "fx_level", "baseline")
            flags = list(isa_flags[level])
            if flags and not self.try_compile(probe, flags):
                raise RuntimeError(f"the compiler does not accept {flags} for the {level} kernels")
            ext.extra_compile_args = base + flags + omp_c
            ext.extra_link_args = omp_l + (omp_c if not msvc else [])
        super().build_extensions()


def kernel_extensions():
    from Cython.Build import cythonize

    levels = ["baseline", "avx2", "avx512"] if targets_x86() else ["baseline"]
    wanted = os.environ.get("FASTXENT_BUILD_LEVELS", "").strip()
    if wanted:
        levels = [level for level in levels if level == "baseline" or level in wanted.split(",")]
    names = sorted(p.stem for p in PYX.glob("_*.pyx"))
    plain = [Extension(f"fastxent.{name}", [f"pyx/{name}.pyx"], include_dirs=["pyx"]) for name in names]
    cythonized = cythonize(plain, language_level=3,
                           compiler_directives={"freethreading_compatible": True})
    GEN.mkdir(parents=True, exist_ok=True)
    # a header edit rebuilds every level of every module (they all may include it)
    headers = sorted(str(p.relative_to(HERE)) for p in PYX.glob("*.h"))
    extensions = []
    for ext in cythonized:
        name = ext.name.split(".")[-1]
        c_file = Path(ext.sources[0]).resolve()
        if name == "_cpu":   # feature detection must run on any CPU
            ext.fx_level = "baseline"
            extensions.append(ext)
            continue
        for level in levels:
            wrapper = GEN / f"{name}_{level}.c"
            text = (f'#define FX_ISA_NAME "{level}"\n'
                    f"#define PyInit_{name} PyInit_{name}_{level}\n"
                    f'#include "{c_file.as_posix()}"\n')
            if not wrapper.exists() or wrapper.read_text() != text:
                wrapper.write_text(text)
            variant = Extension(f"fastxent.{name}_{level}", [str(wrapper.relative_to(HERE))],
                                include_dirs=["pyx"], depends=[str(c_file)] + headers)
            variant.fx_level = level
            extensions.append(variant)
    return extensions


setup(ext_modules=kernel_extensions(), cmdclass={"build_ext": BuildExt})
