"""LightGBM's own time to load a model file and predict one row (the peer of
BenchmarkLoad): lgb.Booster(model_file=...) then predict, median of N runs."""
import statistics
import sys
import time

import lightgbm as lgb
import numpy as np

path, runs = sys.argv[1], int(sys.argv[2])
times = []
for _ in range(runs):
    start = time.perf_counter()
    b = lgb.Booster(model_file=path)
    b.predict(np.zeros((1, b.num_feature())))
    times.append(time.perf_counter() - start)
print(f"lightgbm {lgb.__version__}: {b.num_trees()} trees, load + 1-row predict median {statistics.median(times) * 1000:.1f} ms over {runs} runs")
