"""Fit time, extra peak memory and test accuracy of fastxent's SoftmaxRegression
against scikit-learn's LogisticRegression (lbfgs, multinomial), same C, tol
and max_iter, on make_classification data with many classes.

    python bench/sklearn_fit.py                       # 100,000 x 256, 1,000 classes
    python bench/sklearn_fit.py --n-samples 20000 --n-classes 100

Each fit runs in a fresh process that loads the data, resets its peak-RSS
counter (/proc/self/clear_refs) and reports VmHWM - VmRSS before the fit:
the memory the fit itself needed, the data excluded.  Linux only.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np


def status_kib(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def reset_peak():
    """Make VmHWM restart from the current RSS (Linux >= 4.0)."""
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")


def make_estimator(name, args):
    if name == "fastxent":
        from fastxent.sklearn import SoftmaxRegression
        return SoftmaxRegression(C=args.C, tol=args.tol, max_iter=args.max_iter)
    from sklearn.linear_model import LogisticRegression
    return LogisticRegression(C=args.C, tol=args.tol, max_iter=args.max_iter, solver="lbfgs")


def child(args):
    """One fit in this (fresh) process; prints a JSON line."""
    import warnings
    data = np.load(args.data)
    X_train, y_train, X_test, y_test = (data[k] for k in ("X_train", "y_train", "X_test", "y_test"))
    estimator = make_estimator(args.child, args)
    reset_peak()
    before = status_kib("VmRSS")
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        estimator.fit(X_train, y_train)
    seconds = time.perf_counter() - start
    extra_mib = (status_kib("VmHWM") - before) / 1024
    print(json.dumps({
        "estimator": args.child, "fit_s": seconds, "extra_peak_mib": extra_mib,
        "n_iter": int(np.max(estimator.n_iter_)), "test_accuracy": float(estimator.score(X_test, y_test)),
        "train_accuracy": float(estimator.score(X_train, y_train)),
        "converged": not any("converge" in str(w.message) for w in caught),
    }))


def make_data(args, path):
    from sklearn.datasets import make_classification
    start = time.perf_counter()
    X, y = make_classification(args.n_samples + args.n_test, args.n_features,
                               n_informative=args.n_informative, n_redundant=0, n_repeated=0,
                               n_classes=args.n_classes, n_clusters_per_class=1, random_state=0)
    np.savez(path, X_train=X[:args.n_samples], y_train=y[:args.n_samples],
             X_test=X[args.n_samples:], y_test=y[args.n_samples:])
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=100_000, help="training samples")
    parser.add_argument("--n-test", type=int, default=20_000, help="test samples")
    parser.add_argument("--n-features", type=int, default=256)
    parser.add_argument("--n-informative", type=int, default=128)
    parser.add_argument("--n-classes", type=int, default=1000)
    parser.add_argument("--C", type=float, default=1.0)
    parser.add_argument("--tol", type=float, default=1e-4)
    parser.add_argument("--max-iter", type=int, default=100)
    parser.add_argument("--estimators", default="fastxent,sklearn")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "data.npz")
        generated = make_data(args, path)
        size_mib = args.n_samples * args.n_features * 8 / 2**20
        print(f"data: {args.n_samples:,} x {args.n_features} float64 ({size_mib:,.0f} MiB), "
              f"{args.n_classes:,} classes, {args.n_informative} informative features, "
              f"{args.n_test:,} test samples; generated in {generated:.1f} s")
        print(f"C={args.C}, tol={args.tol}, max_iter={args.max_iter}; one (samples x classes) float64 "
              f"array is {args.n_samples * args.n_classes * 8 / 2**20:,.0f} MiB\n")
        rows = []
        forwarded = [f"--C={args.C}", f"--tol={args.tol}", f"--max-iter={args.max_iter}"]
        for name in args.estimators.split(","):
            result = subprocess.run([sys.executable, __file__, "--child", name, "--data", path] + forwarded,
                                    capture_output=True, text=True, check=True)
            rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
            print(f"  {name}: done", file=sys.stderr)
    print("| estimator | fit time | iterations | converged | extra peak memory | test accuracy "
          "| train accuracy |")
    print("|---|---|---|---|---|---|---|")
    labels = {"fastxent": "fastxent SoftmaxRegression", "sklearn": "LogisticRegression(lbfgs)"}
    for row in rows:
        print(f"| {labels[row['estimator']]} | {row['fit_s']:.1f} s | {row['n_iter']} | "
              f"{'yes' if row['converged'] else 'no'} | {row['extra_peak_mib']:,.0f} MiB | "
              f"{100 * row['test_accuracy']:.2f} % | {100 * row['train_accuracy']:.2f} % |")


if __name__ == "__main__":
    main()
