"""Predicts with a LightGBM text model written by Atrium, the way a pandas user does.

Usage: python predict_pandas.py MODEL.txt DATA.csv

Text columns become pandas categoricals; lightgbm maps them to the training
codes with the model's pandas_categorical line. Prints the predictions as JSON.
"""
import json
import sys

import lightgbm as lgb
import pandas as pd

booster = lgb.Booster(model_file=sys.argv[1])
df = pd.read_csv(sys.argv[2])
X = df[booster.feature_name()].copy()
for col in X.columns:
    if not pd.api.types.is_numeric_dtype(X[col]):
        X[col] = X[col].astype("category")
print(json.dumps({"pandas_categorical": booster.pandas_categorical, "pred": booster.predict(X).ravel().tolist()}))
