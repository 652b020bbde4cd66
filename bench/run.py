"""fastxent against its peers, in one run on one machine.

    PYTHONPATH=src python bench/run.py [--threads 2] [--quick] [--markdown] [--out results.json]

Times fastxent's sparse softmax cross-entropy (mean loss; loss + gradient
into a caller buffer, into a new array, and in place) against numpy+scipy,
PyTorch, scikit-learn and JAX/optax (each where installed), and a floor: an
OpenMP C loop (bench/floor.c, compiled here) that reads the logits once.
Every (implementation, mode, case, dtype) runs in a fresh process (cell.py),
which measures the median time and the extra peak memory of the calls, inputs
excluded.  Peers get the same thread count (numpy+scipy is single-threaded).

--family soft,sigmoid,nd-axis1,nd-last times the rest of the family instead
(or as well: "sparse" is the above), each against numpy+scipy, PyTorch and the
floor, with its own default cases (family.py).
"""
import argparse
import datetime
import importlib.util
from importlib.metadata import PackageNotFoundError, version
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import floor  # noqa: E402
import report  # noqa: E402
from family import FAMILIES  # noqa: E402

CASES = ((1, 1000), (1, 50257), (32, 1000), (256, 32000), (4096, 32000), (2048, 128256), (65536, 100))
QUICK_CASES = ((1, 1000), (1, 50257), (32, 1000), (256, 1000))
# float64 at these sizes: fastxent, PyTorch and the floor only (the others
# take seconds a call and gigabytes of temporaries)
LARGE = 10**8
LARGE_FLOAT64_IMPLS = ("fastxent", "torch", "floor")
ISA_CASE = (4096, 32000)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--family", default="sparse",
                        help=f"comma-separated subset of {','.join(FAMILIES)} (default sparse)")
    parser.add_argument("--threads", type=int, default=2, help="threads for every library (default 2)")
    parser.add_argument("--cases", help="comma-separated logits shapes, e.g. 32x1000,4096x32000 "
                        "(default: the family's)")
    parser.add_argument("--dtypes", default="float32,float64", help="default float32,float64")
    parser.add_argument("--impls", help="comma-separated subset of the implementations "
                        f"(sparse: {','.join(FAMILIES['sparse'].impls)})")
    parser.add_argument("--quick", action="store_true", help="small cases, short timings (CI smoke test)")
    parser.add_argument("--min-time", type=float, help="seconds of timed calls per cell (default 0.5)")
    parser.add_argument("--no-isa", action="store_true",
                        help="skip the comparison of instruction-set levels (fastxent forward, 4096x32000)")
    parser.add_argument("--markdown", action="store_true", help="also print the tables as Markdown")
    parser.add_argument("--out", help="write all results as JSON to this file")
    parser.add_argument("--from-json", metavar="FILE", help="print the tables of a saved --out file; run nothing")
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error("--threads must be >= 1")
    args.family = tuple(args.family.split(","))
    for name in args.family:
        if name not in FAMILIES:
            parser.error(f"unknown family {name!r}; known: {', '.join(FAMILIES)}")
    if args.cases:
        try:
            args.cases = tuple(tuple(int(n) for n in case.lower().split("x")) for case in args.cases.split(","))
        except ValueError:
            parser.error(f"--cases must look like 32x1000,4096x32000, got {args.cases!r}")
    args.dtypes = tuple(args.dtypes.split(","))
    known = all_impls(args.family)
    args.impls = tuple(args.impls.split(",")) if args.impls else tuple(known)
    for name in args.impls:
        if name not in known:
            parser.error(f"unknown implementation {name!r}; known: {', '.join(known)}")
    if args.min_time is None:
        args.min_time = 0.05 if args.quick else 0.5
    return args


def all_impls(families):
    """name -> (make, modes, module, what) over the families (the first family's entry per name)."""
    found = {}
    for family in families:
        for name, spec in FAMILIES[family].impls.items():
            found.setdefault(name, spec)
    return found


def family_cases(family, args):
    if args.cases:
        return args.cases
    if family == "sparse":
        return QUICK_CASES if args.quick else CASES
    return FAMILIES[family].quick_cases if args.quick else FAMILIES[family].cases


def machine():
    model = "unknown CPU"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as meminfo:
        total_gib = int(meminfo.readline().split()[1]) / 2**20
    return f"{model}, {os.cpu_count()} cores, {total_gib:.0f} GiB, {platform.system()} {platform.release()}"


def versions(impls):
    """The installed version of each implementation's library (installed ones only)."""
    found = {}
    for name, spec in impls.items():
        module = spec[2]
        if module is None or importlib.util.find_spec(module) is None:
            continue
        distribution = {"sklearn": "scikit-learn"}.get(module, module)
        try:
            found[name] = version(distribution)
        except PackageNotFoundError:
            found[name] = "source tree"   # fastxent run with PYTHONPATH=src
    return found


def plan(args, available):
    cells = []
    for family in args.family:
        impls, axis = FAMILIES[family].impls, FAMILIES[family].axis
        for dtype in args.dtypes:
            for shape in family_cases(family, args):
                n_classes = shape[axis]
                n_rows = math.prod(shape) // n_classes
                for impl in available:
                    if impl not in impls or (dtype == "float64" and n_rows * n_classes >= LARGE
                                             and impl not in LARGE_FLOAT64_IMPLS):
                        continue
                    for mode in impls[impl][1]:
                        cell = {"impl": impl, "mode": mode, "n_rows": n_rows, "n_classes": n_classes,
                                "dtype": dtype, "env": {}}
                        if family != "sparse":
                            cell.update(family=family, shape=list(shape))
                        cells.append(cell)
    return cells


def isa_plan(levels):
    n_rows, n_classes = ISA_CASE
    return [{"impl": "fastxent", "mode": "fwd", "n_rows": n_rows, "n_classes": n_classes, "dtype": "float32",
             "env": {"FASTXENT_ISA": level}, "isa": level} for level in levels]


def run_cell(cell, args, floor_library):
    spec = dict(cell, threads=args.threads, floor_library=str(floor_library), min_time=args.min_time,
                min_reps=5, max_reps=200_000)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), **cell["env"])
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=true "
                        f"intra_op_parallelism_threads={args.threads}").strip()
    done = subprocess.run([sys.executable, str(HERE / "cell.py"), json.dumps(spec)], env=env,
                          capture_output=True, text=True)
    result = {key: value for key, value in cell.items() if key != "env"}
    if done.returncode != 0:
        lines = (done.stderr.strip() or f"exit status {done.returncode}").splitlines()
        result["error"] = lines[-1] if lines else f"exit status {done.returncode}"
    else:
        result.update(json.loads(done.stdout.strip().splitlines()[-1]))
    return result


def run_all(cells, args, floor_library, label):
    results = []
    for number, cell in enumerate(cells, 1):
        start = time.perf_counter()
        result = run_cell(cell, args, floor_library)
        status = result.get("error") or report.fmt_time(result["median_s"])
        print(f"  [{label} {number}/{len(cells)}] {cell['impl']} {cell['mode']} "
              f"{cell.get('family', 'sparse')} {report.case_of(cell)} {cell['dtype']}"
              f"{' ' + cell['env'].get('FASTXENT_ISA', '') if cell['env'] else ''}: {status} "
              f"({time.perf_counter() - start:.1f} s)", file=sys.stderr, flush=True)
        results.append(result)
    return results


def isa_table(results, markdown):
    found = report.index([r for r in results if r["mode"] == "read"])
    case = report.case_name(*ISA_CASE)
    floor = found.get(("floor", "read", case, "float32"))
    timed = [r for r in results if "isa" in r and "error" not in r]
    slowest = max((r["median_s"] for r in timed), default=None)
    table = [{"level": r["isa"], "median": report.fmt_time(r["median_s"]),
              "x floor": f"{r['median_s'] / floor['median_s']:.2f}" if floor else "",
              "speed-up over the slowest": f"{slowest / r['median_s']:.1f}x"} for r in timed]
    columns = ("level", "median", "x floor", "speed-up over the slowest")
    return report.markdown_table(table, columns) if markdown else report.text_table(table, columns)


def measure(args):
    """Runs every cell; returns the record that --out writes and show() prints."""
    import fastxent

    started = datetime.datetime.now().astimezone()
    load_start = os.getloadavg()
    print(f"fastxent benchmark, {started:%Y-%m-%d %H:%M %Z}")
    print(f"machine: {machine()}")
    print(f"threads: {args.threads}; load average at start: {load_start}")
    config = fastxent.config()
    print(f"fastxent {config['version']}: ISA {config['isa']} ({config['simd_width_bits']}), "
          f"supported {config['isa_supported']}, OpenMP {config['openmp']}, compiler {config['compiler']}")
    impls = all_impls(args.family)
    peer_versions = versions({name: impls[name] for name in args.impls})
    available = [name for name in args.impls if impls[name][2] is None or name in peer_versions]
    for family in args.family:
        print(f"{family}: {FAMILIES[family].what}")
        for name, spec in FAMILIES[family].impls.items():
            if name in args.impls:
                state = f"{peer_versions[name]}" if name in peer_versions else \
                    ("built here" if spec[2] is None else "NOT INSTALLED: skipped")
                print(f"  {name:<12} {spec[3]}: {state}")
    print("float64 at >= 1e8 logits: fastxent, torch and the floor only (to save time and memory)")
    print(f"timing: median of calls after one warm-up, repeated for ~{args.min_time} s (at least 5) per cell; "
          "x floor = median / median of the floor's read-once loop, same case and dtype")
    print(f"other CPUs = cores' worth of CPU other processes used during the cell; above {report.CONTENDED} "
          "the cell is marked contended (its threads were likely preempted: rerun on a quiet machine)")
    sys.stdout.flush()

    with tempfile.TemporaryDirectory() as tmp:
        floor_library = floor.build(tmp)
        results = run_all(plan(args, available), args, floor_library, "cell")
        levels = [] if args.quick or args.no_isa or "fastxent" not in available or "sparse" not in args.family \
            else config["isa_supported"]
        isa_results = run_all(isa_plan(levels), args, floor_library, "isa") if levels else []
    load_end = os.getloadavg()
    print(f"\nload average at end: {load_end}")
    return {"started": started.isoformat(), "machine": machine(), "threads": args.threads, "family": args.family,
            "load_average": [load_start, load_end], "fastxent": config, "versions": peer_versions,
            "results": results, "isa": isa_results}


def show(record, markdown):
    """Prints each family's tables and targets; returns all the targets."""
    isa_results = record["isa"]
    by_family = {}
    for result in record["results"]:
        by_family.setdefault(result.get("family", "sparse"), []).append(result)
    checks = []
    for family, results in by_family.items():
        if family != "sparse" or len(by_family) > 1:
            print(f"\n=== {family}: {FAMILIES[family].what}")
        table = report.rows(results)
        print("\n" + report.text_table(table))
        if family == "sparse":
            family_checks = report.targets(results)
            print(f"\ntargets (issue 2; defined for 2 threads, measured with {record['threads']}):")
        else:
            family_checks = report.family_targets(results)
            print(f"\ntargets (issue 3; measured with {record['threads']} threads):")
        print(report.targets_text(family_checks))
        isa = isa_results if family == "sparse" else []
        if isa:
            print(f"\ninstruction-set levels, fastxent forward {report.case_name(*ISA_CASE)} float32:")
            print(isa_table(results + isa, markdown=False))
        if markdown:
            for dtype in dict.fromkeys(r["dtype"] for r in results):
                print(f"\n{dtype}: median time (fastxent's speed-up over it), extra peak memory\n")
                print(report.pivot(results, dtype))
            print("\n" + report.markdown_table(table))
            print("\n" + report.targets_text(family_checks, markdown=True))
            if isa:
                print("\n" + isa_table(results + isa, markdown=True))
        checks += family_checks
    return checks


def main(argv=None):
    args = parse_args(argv)
    if args.from_json:
        with open(args.from_json) as saved:
            record = json.load(saved)
    else:
        record = measure(args)
    record["targets"] = show(record, args.markdown)
    if args.out:
        with open(args.out, "w") as out:
            json.dump(record, out, indent=1)
    failed = [r for r in record["results"] + record["isa"] if "error" in r]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
