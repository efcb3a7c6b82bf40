"""The peers of bench/serving/trees: LightGBM and XGBoost predicting one row
and batches of rows, one thread, on the same model and rows as Atrium.

    peers.py prepare DIR   generate the data, train the models, write them
    peers.py measure DIR   time the peers' predictions, print JSON on stdout

prepare trains with LightGBM (and XGBoost with the same parameters) on
generated data: 30 features, 29 numeric (some with missing values) and one
categorical, a binary label. It writes, for each model size T:

    lgb_T.txt        LightGBM text model
    xgb_T.json       XGBoost JSON model
    rows.f64         the 200 test rows, row-major little-endian doubles
    lgb_T.pred.f64   LightGBM's Booster.predict of the rows (probabilities)
    xgb_T.pred.f64   XGBoost's inplace_predict of the rows
    meta.json        shapes and names

measure times, per model and batch size (1 row, 200 rows), several ways of
calling each library, from the most convenient to the least overhead:

    lightgbm predict        Booster.predict(X, num_threads=1)
    lightgbm C fast         LGBM_BoosterPredictForMatSingleRowFast through
                            ctypes (1 row only): LightGBM's own fast path
    lightgbm C mat          LGBM_BoosterPredictForMat through ctypes
    xgboost inplace         Booster.inplace_predict(X) with nthread=1
    xgboost C dense         XGBoosterPredictFromDense through ctypes, with
                            the JSON arguments built once

Each figure is the mean time of one call over a loop timed inside this
process (time.perf_counter_ns around the whole loop, and the process's CPU
time, time.process_time_ns, which a busy shared machine disturbs less),
best of several loops. What it includes: for the Python API calls, the Python wrapper's
work (argument checks, array conversion, the result array); for the ctypes
calls, one ctypes foreign call and its argument conversion, which
"ctypes overhead" (a no-op C call with as many arguments, LGBM_GetLastError
style) measures on its own so that the report can subtract it.
"""
import ctypes
import json
import os
import sys
import time

import numpy as np

NUM_FEATURES = 30
CAT_COL = 7  # the categorical column
CATEGORIES = 20
TRAIN_ROWS = 20000
TEST_ROWS = 200
SIZES = (300, 1000)
PARAMS = {"num_leaves": 31, "learning_rate": 0.05, "max_bin": 255, "seed": 1}


def generate(n, seed):
    r = np.random.default_rng(seed)
    X = np.empty((n, NUM_FEATURES))
    for j in range(NUM_FEATURES):
        kind = j % 4
        if kind == 0:
            X[:, j] = r.normal(size=n)
        elif kind == 1:
            X[:, j] = r.uniform(-2, 2, size=n)
        elif kind == 2:
            X[:, j] = np.exp(r.normal(size=n) * 0.75) - 1
        else:
            X[:, j] = np.round(r.normal(size=n) * 3)
    X[:, CAT_COL] = r.integers(0, CATEGORIES, size=n)
    er = np.random.default_rng(42)
    coef = er.uniform(-0.8, 0.8, size=NUM_FEATURES)
    coef[CAT_COL] = 0
    effect = er.normal(size=CATEGORIES) * 0.6
    f = X @ coef + np.sin(X[:, 0] * 2) + X[:, 1] * X[:, 2] * 0.5 + effect[X[:, CAT_COL].astype(int)]
    y = (r.uniform(size=n) < 1 / (1 + np.exp(-f))).astype(float)
    # Missing values in a third of the numeric columns, after the label.
    for j in range(0, NUM_FEATURES, 3):
        if j != CAT_COL:
            X[r.uniform(size=n) < 0.05, j] = np.nan
    return X, y


def prepare(d):
    import lightgbm as lgb
    import xgboost as xgb

    X, y = generate(TRAIN_ROWS, 1)
    Xt, _ = generate(TEST_ROWS, 2)
    Xt = np.ascontiguousarray(Xt)
    Xt.astype("<f8").tofile(os.path.join(d, "rows.f64"))
    names = [f"f{j:02d}" for j in range(NUM_FEATURES)]
    types = ["c" if j == CAT_COL else "q" for j in range(NUM_FEATURES)]
    for T in SIZES:
        lp = dict(PARAMS, objective="binary", verbose=-1, num_threads=2)
        b = lgb.train(lp, lgb.Dataset(X, y, feature_name=names, categorical_feature=[CAT_COL]), T)
        b.save_model(os.path.join(d, f"lgb_{T}.txt"))
        b.predict(Xt, num_threads=1).astype("<f8").tofile(os.path.join(d, f"lgb_{T}.pred.f64"))
        xp = {"objective": "binary:logistic", "tree_method": "hist", "grow_policy": "lossguide",
              "max_leaves": PARAMS["num_leaves"], "max_depth": 0, "eta": PARAMS["learning_rate"],
              "max_bin": PARAMS["max_bin"], "nthread": 2, "seed": 1, "max_cat_to_onehot": 4}
        dm = xgb.DMatrix(X, y, feature_names=names, feature_types=types, enable_categorical=True)
        xb = xgb.train(xp, dm, T)
        xb.save_model(os.path.join(d, f"xgb_{T}.json"))
        xb.set_param({"nthread": 1})
        xb.inplace_predict(Xt).astype("<f8").tofile(os.path.join(d, f"xgb_{T}.pred.f64"))
    with open(os.path.join(d, "meta.json"), "w") as f:
        json.dump({"features": names, "categorical": [CAT_COL], "rows": TEST_ROWS, "sizes": list(SIZES),
                   "lightgbm": lgb.__version__, "xgboost": xgb.__version__}, f)


def per_call(fn, calls, loops):
    """Mean nanoseconds of one fn(i) call, i cycling over calls indices, in
    wall time and in CPU time of the whole process, each the best of loops
    timed loops (after one untimed warm-up loop)."""
    best, best_cpu = float("inf"), float("inf")
    for k in range(loops + 1):
        t, c = time.perf_counter_ns(), time.process_time_ns()
        for i in range(calls):
            fn(i)
        dt, dc = (time.perf_counter_ns() - t) / calls, (time.process_time_ns() - c) / calls
        if k > 0:
            best, best_cpu = min(best, dt), min(best_cpu, dc)
    return best, best_cpu


def measure(d, loops, budget_ns):
    import lightgbm as lgb
    import xgboost as xgb
    from lightgbm.basic import _LIB as LLIB
    from xgboost.core import _LIB as XLIB
    from xgboost.core import make_jcargs
    from xgboost._data_utils import array_interface

    with open(os.path.join(d, "meta.json")) as f:
        meta = json.load(f)
    nf, nrows = len(meta["features"]), meta["rows"]
    X = np.fromfile(os.path.join(d, "rows.f64"), dtype="<f8").reshape(nrows, nf)
    singles = [np.ascontiguousarray(X[i:i + 1]) for i in range(nrows)]
    out = []

    def calls_for(batch, est_ns):
        # Enough calls for about budget_ns per timed loop, at least 20.
        return max(20, int(budget_ns / max(est_ns, 1)))

    def record(library, path, T, batch, fn, check=None):
        est, _ = per_call(fn, 5, 1)
        ns, cpu_ns = per_call(fn, calls_for(batch, est), loops)
        if check is not None:
            check()
        out.append({"library": library, "path": path, "trees": T, "rows": batch, "ns_per_call": ns, "cpu_ns_per_call": cpu_ns})

    # The ctypes overhead: a C call of the same arity that does nothing.
    # LGBM_BoosterGetNumClasses is the cheapest call with a handle argument.
    for T in meta["sizes"]:
        b = lgb.Booster(model_file=os.path.join(d, f"lgb_{T}.txt"))
        want = np.fromfile(os.path.join(d, f"lgb_{T}.pred.f64"), dtype="<f8")
        lv = "lightgbm " + lgb.__version__
        record(lv, "predict", T, 1, lambda i: b.predict(singles[i % nrows], num_threads=1))
        record(lv, "predict", T, nrows, lambda i: b.predict(X, num_threads=1))

        # The single-row fast path: LightGBM's own answer for serving.
        fast = ctypes.c_void_p()
        rc = LLIB.LGBM_BoosterPredictForMatSingleRowFastInit(
            b._handle, ctypes.c_int(0), ctypes.c_int(0), ctypes.c_int(-1), ctypes.c_int(1),
            ctypes.c_int32(nf), ctypes.c_char_p(b"num_threads=1"), ctypes.byref(fast))
        assert rc == 0, LLIB.LGBM_GetLastError()
        res = np.zeros(1)
        res_p = res.ctypes.data_as(ctypes.POINTER(ctypes.c_double))
        n_out = ctypes.c_int64()
        ptrs = [ctypes.c_void_p(s.ctypes.data) for s in singles]
        fastfn = LLIB.LGBM_BoosterPredictForMatSingleRowFast
        byref_n = ctypes.byref(n_out)

        def check_fast():
            fastfn(fast, ptrs[5], byref_n, res_p)
            assert abs(res[0] - want[5]) <= 1e-12 * max(1, abs(want[5])), (res[0], want[5])

        record(lv, "C fast (ctypes)", T, 1, lambda i: fastfn(fast, ptrs[i % nrows], byref_n, res_p), check_fast)
        LLIB.LGBM_FastConfigFree(fast)

        mat = LLIB.LGBM_BoosterPredictForMat
        resb = np.zeros(nrows)
        resb_p = resb.ctypes.data_as(ctypes.POINTER(ctypes.c_double))
        param = ctypes.c_char_p(b"num_threads=1")
        xp = ctypes.c_void_p(X.ctypes.data)
        for batch in (1, nrows):
            args = lambda i: (b._handle, ptrs[i % nrows] if batch == 1 else xp, ctypes.c_int(1), ctypes.c_int32(batch),
                              ctypes.c_int32(nf), ctypes.c_int(1), ctypes.c_int(0), ctypes.c_int(0), ctypes.c_int(-1),
                              param, byref_n, resb_p)
            pre = [args(i) for i in range(nrows)]

            def check_mat():
                mat(*pre[0])
                assert np.allclose(resb[:batch], want[:batch], rtol=1e-12, atol=0), (resb[:batch], want[:batch])

            record(lv, "C mat (ctypes)", T, batch, lambda i: mat(*pre[i % nrows]), check_mat)
        record(lv, "ctypes overhead", T, 1, lambda i: LLIB.LGBM_BoosterGetNumClasses(b._handle, byref_n))

        xb = xgb.Booster(model_file=os.path.join(d, f"xgb_{T}.json"))
        xb.set_param({"nthread": 1})
        xwant = np.fromfile(os.path.join(d, f"xgb_{T}.pred.f64"), dtype="<f8")
        xv = "xgboost " + xgb.__version__
        record(xv, "inplace_predict", T, 1, lambda i: xb.inplace_predict(singles[i % nrows]))
        record(xv, "inplace_predict", T, nrows, lambda i: xb.inplace_predict(X))
        # XGBoosterPredictFromDense with the arguments inplace_predict
        # builds, built once.
        jargs = make_jcargs(type=0, training=False, iteration_begin=0, iteration_end=0, missing=np.nan,
                            strict_shape=False, cache_id=0)
        ifaces = [array_interface(s) for s in singles]
        iface_all = array_interface(X)
        shape = ctypes.POINTER(ctypes.c_uint64)()
        dims = ctypes.c_uint64()
        preds = ctypes.POINTER(ctypes.c_float)()
        dense = XLIB.XGBoosterPredictFromDense
        null = ctypes.c_void_p()
        bs, bd, bp = ctypes.byref(shape), ctypes.byref(dims), ctypes.byref(preds)
        for batch in (1, nrows):
            def call(i, batch=batch):
                return dense(xb.handle, ifaces[i % nrows] if batch == 1 else iface_all, jargs, null, bs, bd, bp)

            def check_dense(batch=batch):
                assert call(0) == 0
                got = np.ctypeslib.as_array(preds, shape=(batch,)).astype(np.float64)
                assert np.allclose(got, xwant[:batch], rtol=1e-6, atol=0), (got, xwant[:batch])

            record(xv, "C dense (ctypes)", T, batch, call, check_dense)
    json.dump(out, sys.stdout)


def load_times(d, repeat):
    """Seconds to load each model file, best of repeat."""
    import lightgbm as lgb
    import xgboost as xgb

    with open(os.path.join(d, "meta.json")) as f:
        meta = json.load(f)
    out = []
    for T in meta["sizes"]:
        for lib, path, load in (("lightgbm " + lgb.__version__, f"lgb_{T}.txt", lambda p: lgb.Booster(model_file=p)),
                                ("xgboost " + xgb.__version__, f"xgb_{T}.json", lambda p: xgb.Booster(model_file=p))):
            best = float("inf")
            for _ in range(repeat):
                t = time.perf_counter()
                load(os.path.join(d, path))
                best = min(best, time.perf_counter() - t)
            out.append({"library": lib, "file": path, "trees": T, "seconds": best})
    return out


if __name__ == "__main__":
    cmd, d = sys.argv[1], sys.argv[2]
    if cmd == "prepare":
        prepare(d)
    elif cmd == "measure":
        cfg = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
        measure(d, cfg.get("loops", 5), cfg.get("budget_ms", 200) * 1e6)
    elif cmd == "load":
        json.dump(load_times(d, 3), sys.stdout)
    else:
        sys.exit(f"unknown command {cmd}")
