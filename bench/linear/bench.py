"""Linear models and dataset loading: Atrium against scikit-learn, pandas and pyarrow.

Run through bench/linear/run.sh, which makes the virtualenv and builds Atrium's
side (bench/linear/main.go). Steps, on the same files in the same run:

1. Generates 1M rows x 50 features (28 informative numeric, 10 noise numeric
   with 2% missing values in three of them, 12 text categoricals of 3 to 40
   levels) and a binary label, as Parquet and as CSV.
2. Loading: Atrium's ml.Load (DuckDB; text columns become category codes)
   against pandas.read_parquet (alone, and followed by astype("category") of
   the text columns), pyarrow's read_table(...).to_pandas(), pandas.read_csv
   (C engine and pyarrow engine). Best of --repeat runs each.
3. Logistic regression on the standardised data (numeric: standard scaling of
   the non-missing values, then missing = 0; categorical: one-hot):
   scikit-learn's LogisticRegression(solver="lbfgs", C) against Atrium's
   linear.Train with lambda_l2 = 1/(C n), the same tol. Reports the largest
   coefficient difference, the fit times and their ratio, and Atrium's fit
   throughput (rows x iterations per second).

Prints a markdown table for docs/benchmarks.md and writes results.json.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import sklearn
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from threadpoolctl import threadpool_info

N_INFORMATIVE, N_NOISE, N_CATEGORICAL = 28, 10, 12


def generate(path_parquet, path_csv, n, seed):
    rng = np.random.default_rng(seed)
    cols = {}
    logit = np.zeros(n)
    for j in range(N_INFORMATIVE):
        x = (rng.normal(size=n) * rng.uniform(0.5, 5) + rng.uniform(-10, 10)).astype(np.float32)
        cols[f"num{j:02d}"] = x
        logit += rng.normal() * 0.4 * (x - x.mean()) / x.std()
    for j in range(N_NOISE):
        x = rng.normal(size=n).astype(np.float32)
        if j < 3:
            x[rng.random(n) < 0.02] = np.nan
        cols[f"noise{j:02d}"] = x
    for j in range(N_CATEGORICAL):
        levels = 3 + (j * 37) % 38  # 3..40
        codes = rng.integers(0, levels, size=n)
        effect = rng.normal(size=levels) * 0.5
        logit += effect[codes]
        cols[f"cat{j:02d}"] = np.array([f"c{j}_{k}" for k in range(levels)])[codes]
    logit -= logit.mean()
    cols["y"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int8)
    table = pa.table(cols)
    pq.write_table(table, path_parquet)
    pacsv.write_csv(table, path_csv)


def best_of(repeat, fn):
    """Best wall time of repeat calls, and the process CPU time of that call."""
    best, best_cpu = float("inf"), 0.0
    for _ in range(repeat):
        start, cpu = time.perf_counter(), time.process_time()
        fn()
        if time.perf_counter() - start < best:
            best, best_cpu = time.perf_counter() - start, time.process_time() - cpu
    return best, best_cpu


def atrium(binary, *args):
    out = subprocess.run([binary, *args], check=True, capture_output=True, text=True)
    return out.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--atrium", required=True, help="the built bench/linear binary")
    ap.add_argument("--dir", required=True, help="where data and results go")
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--C", type=float, default=1.0)
    ap.add_argument("--tol", type=float, default=1e-8)
    args = ap.parse_args()
    d = Path(args.dir)
    d.mkdir(parents=True, exist_ok=True)
    pq_path, csv_path = d / f"data_{args.rows}.parquet", d / f"data_{args.rows}.csv"
    if not pq_path.exists() or not csv_path.exists():
        print(f"generating {args.rows} rows ...", file=sys.stderr)
        generate(pq_path, csv_path, args.rows, seed=1)

    results = {"rows": args.rows, "features": N_INFORMATIVE + N_NOISE + N_CATEGORICAL,
               "versions": {"scikit-learn": sklearn.__version__, "pandas": pd.__version__, "pyarrow": pa.__version__,
                            "numpy": np.__version__},
               "blas": [{k: i.get(k) for k in ("internal_api", "architecture", "num_threads")} for i in threadpool_info()]}

    # Loading.
    load, load_cpu = {}, {}
    for name, path in (("parquet", pq_path), ("csv", csv_path)):
        r = json.loads(atrium(args.atrium, "-mode", "load", "-data", str(path), "-label", "y", "-repeat", str(args.repeat)))
        load[f"atrium_{name}"], load_cpu[f"atrium_{name}"] = r["seconds"], r["cpu_seconds"]
    load["pandas_read_parquet"], load_cpu["pandas_read_parquet"] = best_of(args.repeat, lambda: pd.read_parquet(pq_path))
    load["pyarrow_read_table_to_pandas"], load_cpu["pyarrow_read_table_to_pandas"] = best_of(
        args.repeat, lambda: pq.read_table(pq_path).to_pandas())

    def pandas_categorical():
        # What a LightGBM or scikit-learn user does next: text -> category codes.
        df = pd.read_parquet(pq_path)
        for c in df.columns:
            if not pd.api.types.is_numeric_dtype(df[c]):
                df[c] = df[c].astype("category")

    load["pandas_read_parquet_category"], load_cpu["pandas_read_parquet_category"] = best_of(args.repeat, pandas_categorical)
    load["pandas_read_csv_c"], load_cpu["pandas_read_csv_c"] = best_of(args.repeat, lambda: pd.read_csv(csv_path))
    load["pandas_read_csv_pyarrow"], load_cpu["pandas_read_csv_pyarrow"] = best_of(
        args.repeat, lambda: pd.read_csv(csv_path, engine="pyarrow"))
    results["load_seconds"] = load
    results["load_cpu_seconds"] = load_cpu
    print("load:", json.dumps(load), file=sys.stderr)

    # Logistic regression on standardised data.
    df = pd.read_parquet(pq_path)
    y = df.pop("y").to_numpy(dtype=float)
    numeric = [c for c in df.columns if not c.startswith("cat")]
    categorical = [c for c in df.columns if c.startswith("cat")]
    pre = ColumnTransformer([
        ("num", make_pipeline(StandardScaler(), SimpleImputer(strategy="constant", fill_value=0.0)), numeric),
        ("cat", OneHotEncoder(sparse_output=False), categorical),
    ])
    start = time.perf_counter()
    X = pre.fit_transform(df)
    sk_pre_seconds = time.perf_counter() - start
    names = numeric + [f"{c}={v}" for c, cats in zip(categorical, pre.named_transformers_["cat"].categories_) for v in cats]
    est = LogisticRegression(C=args.C, tol=args.tol, max_iter=10000)
    start, cpu = time.perf_counter(), time.process_time()
    est.fit(X, y)
    sk_fit_seconds, sk_fit_cpu = time.perf_counter() - start, time.process_time() - cpu
    sk_iterations = int(est.n_iter_[0])
    del X

    out = d / "atrium_fit.json"
    lam = 1 / (args.C * len(y))
    atrium(args.atrium, "-mode", "fit", "-data", str(pq_path), "-label", "y", "-objective", "binary",
           "-param", f"lambda_l2={lam!r}", "-param", f"tol={args.tol!r}", "-out", str(out))
    ours = json.loads(out.read_text())
    index = {name: j for j, name in enumerate(ours["inputs"])}
    diffs = [abs(ours["coef"][0][index[name]] - est.coef_[0][j]) for j, name in enumerate(names)]
    diffs.append(abs(ours["intercept"][0] - est.intercept_[0]))
    fit = {
        "inputs": len(names),
        "max_abs_coef_diff": max(diffs),
        "sklearn_fit_seconds": sk_fit_seconds, "sklearn_fit_cpu_seconds": sk_fit_cpu,
        "sklearn_preprocess_seconds": sk_pre_seconds, "sklearn_iterations": sk_iterations,
        "atrium_fit_seconds": ours["fit_seconds"], "atrium_fit_cpu_seconds": ours["fit_cpu_seconds"],
        "atrium_iterations": ours["iterations"], "atrium_converged": ours["converged"],
        "atrium_predict_seconds": ours["predict_seconds"],
        "fit_time_ratio": ours["fit_seconds"] / sk_fit_seconds,
        "fit_cpu_ratio": ours["fit_cpu_seconds"] / sk_fit_cpu,
        "atrium_rows_iterations_per_second": len(y) * ours["iterations"] / ours["fit_seconds"],
    }
    results["logistic_regression"] = fit
    (d / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results, indent=1))

    rows = [
        (f"load {args.rows:,} x 50 Parquet", "atrium_parquet", "pandas.read_parquet", "pandas_read_parquet"),
        (f"load {args.rows:,} x 50 Parquet", "atrium_parquet", "pyarrow read_table().to_pandas()", "pyarrow_read_table_to_pandas"),
        (f"load {args.rows:,} x 50 Parquet, text as categories", "atrium_parquet", "pandas.read_parquet + astype(category)",
         "pandas_read_parquet_category"),
        (f"load {args.rows:,} x 50 CSV", "atrium_csv", "pandas.read_csv (C engine)", "pandas_read_csv_c"),
        (f"load {args.rows:,} x 50 CSV", "atrium_csv", "pandas.read_csv (pyarrow engine)", "pandas_read_csv_pyarrow"),
    ]
    print("\n| measure | Atrium s (CPU s) | peer s (CPU s) | ratio wall (CPU) |\n|---|---|---|---|")
    for what, ours_key, peer, peer_key in rows:
        print(f"| {what} | {load[ours_key]:.2f} ({load_cpu[ours_key]:.2f}) | {peer} {load[peer_key]:.2f} ({load_cpu[peer_key]:.2f}) "
              f"| {load[ours_key] / load[peer_key]:.2f} ({load_cpu[ours_key] / load_cpu[peer_key]:.2f}) |")
    print(f"| logistic regression fit, {args.rows:,} x {len(names)} inputs | {fit['atrium_fit_seconds']:.2f} "
          f"({fit['atrium_fit_cpu_seconds']:.2f}), {fit['atrium_iterations']} it. | LogisticRegression(lbfgs) {sk_fit_seconds:.2f} "
          f"({sk_fit_cpu:.2f}), {sk_iterations} it. | {fit['fit_time_ratio']:.2f} ({fit['fit_cpu_ratio']:.2f}) |")
    print(f"\nlargest coefficient difference: {fit['max_abs_coef_diff']:.1e}; "
          f"fit throughput {fit['atrium_rows_iterations_per_second'] / 1e6:.2f} M rows x iterations / s; "
          f"scikit-learn preprocessing (not in its fit time) {sk_pre_seconds:.2f} s")

if __name__ == "__main__":
    main()
