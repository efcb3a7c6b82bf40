"""Compares `atrium monitor drift --output json` with evidently_files.py's JSON:
same columns, methods and verdicts; prints the largest relative score
difference. Exits 1 on any verdict or method mismatch."""
import json
import sys

a = json.load(open(sys.argv[1]))
e = json.load(open(sys.argv[2]))
ev = {c["column"]: c for c in e["columns"]}
bad, worst = 0, 0.0
for c in a["columns"]:
    x = ev.get(c["column"])
    if x is None or x["method"] != c["method"] or x["drift"] != c["drift"]:
        bad += 1
        print("MISMATCH", c, x)
        continue
    worst = max(worst, abs(c["score"] - x["score"]) / max(abs(x["score"]), 1e-12))
if len(ev) != len(a["columns"]) or a["dataset_drift"] != e["dataset_drift"]:
    bad += 1
    print("MISMATCH in columns or dataset verdict")
print(f"{len(a['columns'])} columns, {a['drifted_count']} drifted: {bad} mismatches, largest relative score difference {worst:.2e}")
if "seconds" in e:
    print(f"evidently's own timing of read + report (no interpreter start, no imports): {e['seconds']:.1f} s")
sys.exit(1 if bad else 0)
