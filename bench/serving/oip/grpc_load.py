"""tritonclient[grpc] closed-loop load against an OIP gRPC server.

    grpc_load.py HOST:PORT MODEL DIR NAME CLIENTS SECONDS

Each of CLIENTS threads has its own InferenceServerClient (one is not safe to
share between threads) and sends infer of DIR/rows.json (FP64 [200, 30]) for
SECONDS after a 2 s warm-up; the first answer is checked against
DIR/pred.json to 1e-6. Prints one JSON line: requests per second and latency
percentiles in ms. The client is the same for every server, so its own cost
(Python, protobuf) is in every figure alike.
"""
import json
import sys
import threading
import time

import numpy as np
import tritonclient.grpc as grpcclient

addr, model, d, name, clients, seconds = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), float(sys.argv[6])
rows = np.array(json.load(open(f"{d}/rows.json")), dtype=np.float64)
want = np.array(json.load(open(f"{d}/pred.json")))


def request(c):
    inp = grpcclient.InferInput("input-0", list(rows.shape), "FP64")
    inp.set_data_from_numpy(rows)
    res = c.infer(model, [inp])
    out = res.get_response().outputs[0].name
    return res.as_numpy(out).reshape(-1)


first = request(grpcclient.InferenceServerClient(addr))
if not np.allclose(first, want, rtol=1e-6, atol=1e-6):
    sys.exit(f"{name}: predictions differ from LightGBM's: {first[:3]} vs {want[:3]}")

lat = [[] for _ in range(clients)]
errors = [0] * clients
start = time.perf_counter()
measure_from, end = start + 2, start + 2 + seconds


def worker(i):
    c = grpcclient.InferenceServerClient(addr)
    while True:
        t = time.perf_counter()
        if t > end:
            return
        try:
            request(c)
        except Exception:
            errors[i] += 1
            continue
        if t >= measure_from:
            lat[i].append(time.perf_counter() - t)


threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
for t in threads:
    t.start()
for t in threads:
    t.join()
all_lat = np.sort(np.concatenate([np.array(x) for x in lat])) * 1000
print(json.dumps({"server": name, "mode": "closed", "transport": "grpc", "concurrency": clients,
                  "requests": int(all_lat.size), "errors": sum(errors), "achieved_rate": all_lat.size / seconds,
                  "p50_ms": float(np.percentile(all_lat, 50)), "p99_ms": float(np.percentile(all_lat, 99)),
                  "max_ms": float(all_lat[-1])}))
