"""Tables and the issue's targets, from the cells' results (dicts with the
spec keys impl/mode/n_rows/n_classes/dtype and either the timings or "error")."""
import math

# the fastxent mode each peer mode is compared with
FASTXENT_MODE = {"fwd": "fwd", "fwdbwd": "fwdbwd"}
LOSS_RTOL = {"float32": 1e-5, "float64": 1e-9}
# a cell during which other processes kept more than this share of a core busy
# is flagged: on a 2-core machine its threads were likely preempted
CONTENDED = 0.25
# logits at least this large are out of every cache: the floor target applies
LARGE_MIB = 64
COLUMNS = ("impl", "mode", "case", "dtype", "median", "reps", "fastxent speed-up", "extra peak MiB",
           "x floor", "other CPUs", "check")


def case_name(n_rows, n_classes):
    return f"{n_rows}x{n_classes}"


def case_of(result):
    """A cell's case: its logits' shape ("shape" for the N-D families, else rows x classes)."""
    return "x".join(map(str, result["shape"])) if "shape" in result else \
        case_name(result["n_rows"], result["n_classes"])


def fmt_time(seconds):
    if seconds is None or math.isnan(seconds):
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def index(results):
    """(impl, mode, case, dtype) -> result, for the cells that ran."""
    return {(r["impl"], r["mode"], case_of(r), r["dtype"]): r
            for r in results if "error" not in r}


def rows(results):
    """One table row (a dict of strings) per cell, in the order they ran."""
    found = index(results)
    table = []
    for r in results:
        case = case_of(r)
        row = {"impl": r["impl"], "mode": r["mode"], "case": case, "dtype": r["dtype"]}
        if "error" in r:
            row.update({key: "-" for key in COLUMNS[4:]})
            row["check"] = "failed: " + r["error"]
            table.append(row)
            continue
        fx = found.get(("fastxent", FASTXENT_MODE.get(r["mode"]), case, r["dtype"]))
        floor = found.get(("floor", "read", case, r["dtype"]))
        reference = found.get(("fastxent", "fwd", case, r["dtype"]))
        speed_up = "" if r["impl"] in ("fastxent", "floor") or fx is None else \
            f"{r['median_s'] / fx['median_s']:.1f}x"
        check = ""
        if r["impl"] != "floor" and reference is not None:
            error = abs(r["loss"] - reference["loss"]) / max(abs(reference["loss"]), 1e-30)
            check = "ok" if error <= LOSS_RTOL[r["dtype"]] else f"! loss rel diff {error:.1e}"
        if r["other_cpus"] > CONTENDED:
            check = ", ".join(filter(None, (check, "contended")))
        row.update({
            "median": fmt_time(r["median_s"]),
            "reps": str(r["reps"]),
            "fastxent speed-up": speed_up,
            "extra peak MiB": f"{r['extra_peak_mib']:.1f}",
            "x floor": "" if floor is None else f"{r['median_s'] / floor['median_s']:.2f}",
            "other CPUs": f"{r['other_cpus']:.2f}",
            "check": check,
        })
        table.append(row)
    return table


def text_table(table, columns=COLUMNS):
    widths = {c: max(len(c), *(len(row[c]) for row in table)) for c in columns} if table else {}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns)]
    lines.append("  ".join("-" * widths[c] for c in columns))
    previous = None
    for row in table:
        group = (row.get("case"), row.get("dtype"))
        if previous is not None and group != previous:
            lines.append("")
        previous = group
        lines.append("  ".join(row[c].ljust(widths[c]) for c in columns))
    return "\n".join(lines)


def markdown_table(table, columns=COLUMNS):
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(row[c] for c in columns) + " |" for row in table]
    return "\n".join(lines)


def pivot(results, dtype, markdown=True):
    """Time (and fastxent's speed-up) and extra peak memory per case, one row
    per (impl, mode), one column per case: the compact view for the README."""
    found = index(results)
    cases = list(dict.fromkeys(case_of(r) for r in results if r["dtype"] == dtype))
    pairs = list(dict.fromkeys((r["impl"], r["mode"]) for r in results if r["dtype"] == dtype))
    table = []
    for impl, mode in pairs:
        row = {"impl": impl, "mode": mode}
        for case in cases:
            r = found.get((impl, mode, case, dtype))
            fx = found.get(("fastxent", FASTXENT_MODE.get(mode), case, dtype))
            if r is None:
                row[case] = "-"
                continue
            speed_up = f" ({r['median_s'] / fx['median_s']:.1f}x)" if fx and impl not in ("fastxent", "floor") \
                else ""
            row[case] = f"{fmt_time(r['median_s'])}{speed_up}, {r['extra_peak_mib']:.1f} MiB"
        table.append(row)
    columns = ("impl", "mode", *cases)
    return markdown_table(table, columns) if markdown else text_table(table, columns)


def comparison(what, slow, fast, at_least):
    """A target (what, measured, verdict) met when slow / fast >= at_least."""
    if slow is None or fast is None:
        return what, None, None
    ratio = slow["median_s"] / fast["median_s"]
    note = " (contended: rerun on a quiet machine)" if max(slow["other_cpus"], fast["other_cpus"]) > CONTENDED \
        else ""
    return what, f"{ratio:.2f}x{note}", ratio >= at_least


def family_targets(results):
    """Issue 3's targets for the rest of the family: fastxent ahead of PyTorch
    in every (case, dtype, mode), and, where the logits are large (at least
    LARGE_MIB, well beyond the caches), the forward within 2x of the floor."""
    found = index(results)
    checks = []
    for family, case, dtype in dict.fromkeys((r.get("family", "sparse"), case_of(r), r["dtype"]) for r in results):
        case_label = f"{family} {case}"
        for mode, what in (("fwd", "forward"), ("fwdbwd", "forward+gradient")):
            checks.append(comparison(f"{case_label} {dtype} {what} ahead of PyTorch (PyTorch / fastxent >= 1)",
                                     found.get(("torch", mode, case, dtype)),
                                     found.get(("fastxent", mode, case, dtype)), 1))
        fastxent = found.get(("fastxent", "fwd", case, dtype))
        if fastxent is not None and fastxent["logits_mib"] >= LARGE_MIB:
            checks.append(comparison(f"{case_label} {dtype} forward within 2x of the read-once floor "
                                     "(floor / fastxent >= 0.5)",
                                     found.get(("floor", "read", case, dtype)), fastxent, 0.5))
    return checks


def targets(results):
    """The issue's targets as (what, measured, verdict), verdict True/False/None
    (not measured); a measurement that used a contended cell says so."""
    found = index(results)
    checks = []

    def cell(impl, mode, case):
        return found.get((impl, mode, case, "float32"))

    def compare(what, slow, fast, at_least):
        checks.append(comparison(what, slow, fast, at_least))

    big = "4096x32000"
    compare(f"{big} float32 forward within 2x of the read-once floor (floor / fastxent >= 0.5)",
            cell("floor", "read", big), cell("fastxent", "fwd", big), 0.5)
    compare(f"{big} float32 forward >= 5x faster than PyTorch",
            cell("torch", "fwd", big), cell("fastxent", "fwd", big), 5)
    for mode in ("fwdbwd", "fwdbwd-inplace", "fwdbwd-new"):
        compare(f"{big} float32 forward+gradient >= 4x faster than PyTorch (fastxent {mode})",
                cell("torch", "fwdbwd", big), cell("fastxent", mode, big), 4)
    compare("32x1000 float32 forward at least as fast as PyTorch",
            cell("torch", "fwd", "32x1000"), cell("fastxent", "fwd", "32x1000"), 1)
    latency = cell("fastxent", "fwd", "1x1000")
    checks.append(("1x1000 float32 forward call under 5 us", latency and fmt_time(latency["median_s"]),
                   None if latency is None else latency["median_s"] < 5e-6))
    for mode, what in (("fwd", "forward"), ("fwdbwd-inplace", "forward+gradient in place")):
        what = f"extra peak memory of the {what} under 1 MiB + 16 B/row"
        cells = [r for r in found.values() if r["impl"] == "fastxent" and r["mode"] == mode and "isa" not in r]
        if not cells:
            checks.append((what, None, None))
            continue
        allowed = {id(r): 1 + 16 * r["n_rows"] / 2**20 for r in cells}
        worst = max(cells, key=lambda r: r["extra_peak_mib"] - allowed[id(r)])
        checks.append((f"{what} (all {len(cells)} cells)",
                       f"worst {worst['extra_peak_mib']:.2f} MiB of {allowed[id(worst)]:.2f} allowed at "
                       f"{case_name(worst['n_rows'], worst['n_classes'])} {worst['dtype']}",
                       worst["extra_peak_mib"] < allowed[id(worst)]))
    return checks


def targets_text(checks, markdown=False):
    verdicts = {True: "met", False: "NOT MET", None: "not measured"}
    if markdown:
        lines = ["| target | measured | |", "|---|---|---|"]
        lines += [f"| {what} | {measured or '-'} | {verdicts[ok]} |" for what, measured, ok in checks]
    else:
        lines = [f"  [{verdicts[ok]:>12}] {what}: {measured or '-'}" for what, measured, ok in checks]
    return "\n".join(lines)
