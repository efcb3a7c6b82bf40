"""Predicts raw scores with a LightGBM text model on exact doubles.

Usage: python predict_exact.py MODEL.txt DATA.csv

DATA.csv has a header of the model's feature names and numbers written
with enough digits to read back exactly (empty = NaN). Python's float()
parses them correctly rounded (pandas' fast parser may not), so LightGBM
compares the very doubles Atrium does. Prints {"raw": [...]} as JSON.
"""
import csv
import json
import sys

import lightgbm as lgb
import numpy as np

booster = lgb.Booster(model_file=sys.argv[1])
with open(sys.argv[2]) as fh:
    rows = list(csv.reader(fh))
header, body = rows[0], rows[1:]
order = [header.index(name) for name in booster.feature_name()]
X = np.array([[float(r[i]) if r[i] != "" else np.nan for i in order] for r in body], dtype=np.float64)
print(json.dumps({"raw": booster.predict(X, raw_score=True).ravel().tolist()}))
