"""Fused linear + cross-entropy against PyTorch and fastxent's own unfused path.

    PYTHONPATH=src python bench/linear.py [--sizes small,large] [--modes fwd,fwdbwd] [--threads 2] [--rounds 3]

Cases, each in a fresh subprocess (so its peak memory is its own):
  torch     F.linear then F.cross_entropy; fwd under torch.no_grad(),
            fwd+bwd with autograd (grads of x and weight)
  unfused   fastxent without fusion: logits = x @ weight.T (numpy's BLAS),
            then the sparse kernel; fwd+bwd writes the logits' gradient in
            place over the logits, then dx = G @ weight, dweight = G.T @ x
  fused     fastxent.linear_cross_entropy(_and_grad)
"x torch" and "x unfused" are time ratios to those cases at the same size.
float32, no bias, mean reduction, the same thread count everywhere
(torch.set_num_threads, n_threads, numpy's BLAS threads).  time = median of
the timed calls, after warm-up calls (small: 5 after two; large: one
after one).  The warm-up keeps out what only a fresh process's first calls
pay, which the calls a training loop repeats do not: at the small size,
glibc's malloc serves the fused call's 12 MiB panel by mmap in the first
call and, its mmap threshold raised by that free, from a newly grown heap
in the second (2,800 page faults, against 1,340 from the third call on).
Measured 2026-11-24 in 6 fresh processes, one warm-up call each: fused
calls 1, 2, 3 took 0.566, 0.534, 0.523 s (means), then 0.522-0.527; the
unfused route 0.533-0.558 from the first.  At the large size the first call
waits for the OS to assemble huge pages for its new arrays (0.7-1.2 s of
8-9 s at 1920 x 1024 x 128256, gone when 1 GiB had been touched before).
Times are pooled over --rounds fresh processes per case
run in turns (torch, unfused, fused, torch, ...); extra peak (the largest of
the rounds) = VmHWM minus RSS once the inputs exist (the peak is reset first through /proc/self/clear_refs), so it
counts every temporary and the gradients themselves.  The large size runs the
peers only if their estimated peak fits in the available memory (else at the
largest row count that does; fastxent fused alone at the full size).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

SIZES = {"tiny": (256, 64, 4096), "small": (1024, 512, 32000), "large": (8192, 1024, 128256)}
IMPLS = ("torch", "unfused", "fused")
MODES = ("fwd", "fwdbwd")


def rss(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def available_bytes():
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no MemAvailable in /proc/meminfo")


def peak_estimate(impl, mode, n_rows, n_hidden, n_classes):
    """Bytes a case needs beyond its inputs (logits-sized arrays it keeps at once)."""
    logits = n_rows * n_classes * 4
    grads = (n_rows + n_classes) * n_hidden * 4
    if impl == "fused":
        return grads + (300 << 20)   # the gradient panel is at most 256 MiB
    if impl == "unfused":
        return logits + grads
    return (2 if mode == "fwd" else 3) * logits + grads   # torch: logits, log-softmax, their grads


def run_case(impl, mode, n_rows, n_hidden, n_classes, threads, reps, warmup):
    """Runs in the child: returns (seconds per timed call, CPU seconds of all
    the process's threads per timed call, extra peak bytes, loss)."""
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.standard_normal((n_rows, n_hidden), dtype=np.float32)
    weight = rng.standard_normal((n_classes, n_hidden), dtype=np.float32)
    weight *= 1.0 / np.sqrt(n_hidden)
    labels = rng.integers(0, n_classes, n_rows)

    if impl == "torch":
        import torch
        import torch.nn.functional as F

        torch.set_num_threads(threads)
        tx, tw, ty = torch.from_numpy(x), torch.from_numpy(weight), torch.from_numpy(labels)
        if mode == "fwd":
            def step():
                with torch.no_grad():
                    return float(F.cross_entropy(F.linear(tx, tw), ty))
        else:
            tx.requires_grad_(True)
            tw.requires_grad_(True)

            def step():
                tx.grad = tw.grad = None
                loss = F.cross_entropy(F.linear(tx, tw), ty)
                loss.backward()
                return float(loss)
    else:
        from threadpoolctl import threadpool_limits

        import fastxent

        threadpool_limits(threads, user_api="blas")
        if impl == "fused" and mode == "fwd":
            def step():
                return float(fastxent.linear_cross_entropy(x, weight, labels, n_threads=threads))
        elif impl == "fused":
            def step():
                return float(fastxent.linear_cross_entropy_and_grad(x, weight, labels, n_threads=threads)[0])
        elif mode == "fwd":
            def step():
                logits = x @ weight.T
                return float(fastxent.sparse_softmax_cross_entropy_with_logits(
                    labels, logits, reduction="mean", n_threads=threads))
        else:
            def step():
                logits = x @ weight.T
                loss, grad = fastxent.sparse_softmax_cross_entropy_with_logits_and_grad(
                    labels, logits, reduction="mean", out=logits, n_threads=threads)
                dx = grad @ weight
                dweight = grad.T @ x
                del dx, dweight
                return float(loss)

    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")   # resets VmHWM to the current RSS
    before = rss("VmRSS:")
    for _ in range(warmup):
        step()
    times, cpu = [], []
    for _ in range(reps):
        start, start_cpu = time.perf_counter(), time.process_time()
        loss = step()
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return times, cpu, rss("VmHWM:") - before, loss


def child(args):
    times, cpu, extra, loss = run_case(args.impl, args.mode, args.rows, args.hidden, args.classes,
                                  args.threads, args.reps, args.warmup)
    print(json.dumps({"times": times, "cpu": cpu, "extra": extra, "loss": loss}))


def launch(impl, mode, shape, threads, reps, warmup):
    command = [sys.executable, __file__, "--child", "--impl", impl, "--mode", mode, "--threads", str(threads),
               "--reps", str(reps), "--warmup", str(warmup), "--rows", str(shape[0]), "--hidden", str(shape[1]),
               "--classes", str(shape[2])]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"{impl} {mode} {shape} failed:\n{result.stderr}")
    return json.loads(result.stdout)


def fitting_rows(shape):
    """The largest row count (halving) at which every peer's estimate fits
    in 80 % of the memory available now."""
    n_rows, n_hidden, n_classes = shape
    budget = 0.8 * available_bytes()
    while n_rows > 1 and max(peak_estimate(impl, mode, n_rows, n_hidden, n_classes)
                             for impl in IMPLS for mode in MODES) > budget:
        n_rows //= 2
    return n_rows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="small,large")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--reps", type=int, default=0, help="timed calls (default: 5, large: 1)")
    parser.add_argument("--warmup", type=int, default=-1, help="warm-up calls (default: 2, large: 1)")
    parser.add_argument("--modes", default=",".join(MODES), help="fwd, fwdbwd or both (default)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="fresh processes per case, the cases taking turns; time = median of all their calls")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--impl", choices=IMPLS)
    parser.add_argument("--mode", choices=MODES)
    parser.add_argument("--rows", type=int)
    parser.add_argument("--hidden", type=int)
    parser.add_argument("--classes", type=int)
    args = parser.parse_args()
    if args.child:
        return child(args)
    if not set(args.modes.split(",")) <= set(MODES):
        parser.error(f"--modes: a comma-separated subset of {', '.join(MODES)}, got {args.modes!r}")

    print(f"{args.threads} threads, {args.rounds} round(s); time = median of the timed calls (cpu: CPU seconds of all threads, "
          f"which other processes on a shared machine inflate less); extra = peak RSS over the inputs")
    print("| size (N, D, C) | logits MiB | impl | mode | time s | cpu s | x torch | x unfused | extra MiB "
          "| % of torch extra | loss |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name in args.sizes.split(","):
        shape = SIZES[name]
        reps = args.reps or (1 if name == "large" else 5)
        warmup = args.warmup if args.warmup >= 0 else (1 if name == "large" else 2)
        peer_rows = fitting_rows(shape)
        runs = [((peer_rows,) + shape[1:], impl) for impl in IMPLS]
        if peer_rows != shape[0]:
            runs.append((shape, "fused"))
        for mode in args.modes.split(","):
            # every case runs `rounds` times, the cases in turn, and its timed
            # calls are pooled: a slow spell of the shared machine then falls
            # on every case alike instead of on whichever ran during it
            results = {}
            for _ in range(args.rounds):
                for case_shape, impl in runs:
                    result = launch(impl, mode, case_shape, args.threads, reps, warmup)
                    pooled = results.setdefault((case_shape, impl),
                                                {"times": [], "cpu": [], "extra": [], "round_medians": []})
                    for key in ("times", "cpu"):
                        pooled[key] += result[key]
                    pooled["round_medians"].append(statistics.median(result["times"]))
                    pooled["extra"].append(result["extra"])
                    pooled["loss"] = result["loss"]
            reference, unfused = {}, {}
            for case_shape, impl in runs:
                result = results[(case_shape, impl)]
                seconds = statistics.median(result["times"])
                extra = max(result["extra"])
                if impl == "torch":
                    reference[case_shape] = (seconds, extra)
                if impl == "unfused":
                    unfused[case_shape] = seconds
                torch_time, torch_extra = reference.get(case_shape, (None, None))
                ratio = f"{seconds / torch_time:.2f}" if torch_time else "-"
                own = f"{seconds / unfused[case_shape]:.2f}" if case_shape in unfused else "-"
                share = f"{100 * extra / torch_extra:.1f}" if torch_extra else "-"
                logits_mib = case_shape[0] * case_shape[2] * 4 / 2**20
                cpu = statistics.median(result["cpu"])
                print(f"| {case_shape} | {logits_mib:,.0f} | {impl} | {mode} | {seconds:.3f} | {cpu:.3f} | {ratio} | {own} | "
                      f"{extra / 2**20:,.1f} | {share} | {result['loss']:.6f} |", flush=True)
            for case_shape in unfused:
                print_rounds(results[(case_shape, "fused")]["round_medians"],
                             results[(case_shape, "unfused")]["round_medians"], case_shape, mode)


def print_rounds(fused, unfused, shape, mode):
    """The fused / unfused time ratio round by round (each round's two
    processes run back to back, so a slow spell of the shared machine falls
    on both), and how many rounds the fused call was the faster in: with
    ratios this close to 1, the pooled medians alone do not say whether
    the difference is more than the machine's noise."""
    ratios = sorted(f / u for f, u in zip(fused, unfused))
    faster = sum(r < 1 for r in ratios)
    print(f"fused / unfused per round, {shape} {mode}: median {statistics.median(ratios):.3f}, "
          f"range {ratios[0]:.3f}-{ratios[-1]:.3f}; fused faster in {faster} of {len(ratios)} rounds",
          flush=True)

if __name__ == "__main__":
    main()
