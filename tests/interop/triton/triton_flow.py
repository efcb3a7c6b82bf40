"""tritonclient[http] and tritonclient[grpc], unchanged, against Atrium's
Open Inference Protocol endpoints (a toy backend: see oiptest.Backend).

Usage: triton_flow.py HTTP_HOST:PORT GRPC_HOST:PORT TOKEN

"sum" scores [batch, k] as each row's sum (NaN counted as 0) times the
version number (default version 2); "echo" returns its inputs. Every check
raises on failure; the last line printed is "ok".
"""
import sys

import numpy as np
import tritonclient.grpc as tg
import tritonclient.http as th
from tritonclient.utils import InferenceServerException

http_url, grpc_url, token = sys.argv[1:4]
AUTH = {"Authorization": "Bearer " + token}


def hdrs():
    # A fresh dict per call: tritonclient's infer adds its
    # Inference-Header-Content-Length to the dict it is given.
    return dict(AUTH)


x = np.array([[1.5, np.nan, -2.0, 4.0], [0.25, 3.0, 1e-7, 0.0], [1e30, 0, 0, 0]], dtype=np.float32)
want = np.nansum(x.astype(np.float64), axis=1)

echo = {
    "b": np.array([[True, False, True]]),
    "i32": np.array([-5, 2**31 - 1], dtype=np.int32),
    "i64": np.array([[2**40], [-(2**62)]], dtype=np.int64),
    "f32": np.array([0.1, np.nan, -np.inf], dtype=np.float32),
    "f64": np.array([1e-300, np.nan, 2.5], dtype=np.float64),
    "s": np.array([b"north", "s\u00fcd".encode(), b""], dtype=np.object_),
}


def same(a, b, what):
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype == np.object_ or b.dtype == np.object_:
        norm = lambda v: v.encode() if isinstance(v, str) else bytes(v)
        ok = a.shape == b.shape and all(norm(p) == norm(q) for p, q in zip(a.ravel(), b.ravel()))
    else:
        ok = a.shape == b.shape and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
    if not ok:
        raise AssertionError(f"{what}: got {a!r}, want {b!r}")


def expect_error(fn, status, text, what):
    try:
        fn()
    except InferenceServerException as e:
        if (status is not None and str(e.status()) != status) or text not in str(e.message()):
            raise AssertionError(f"{what}: got {e.status()} {e.message()!r}, want {status} containing {text!r}")
        return
    raise AssertionError(f"{what}: no error")


# --- HTTP ---
c = th.InferenceServerClient(http_url)
assert c.is_server_live(), "http live"
assert c.is_server_ready(headers=hdrs()), "http ready"
md = c.get_server_metadata(headers=hdrs())
assert "binary_tensor_data" in md["extensions"], md
assert c.is_model_ready("sum", headers=hdrs()), "http model ready"
assert not c.is_model_ready("loading", headers=hdrs()), "http loading ready"
assert c.get_model_metadata("sum", headers=hdrs())["name"] == "sum"

for binary in (True, False):
    inp = th.InferInput("x", list(x.shape), "FP32")
    inp.set_data_from_numpy(x, binary_data=binary)
    # Default outputs: tritonclient asks for binary_data_output.
    r = c.infer("sum", [inp], request_id="r-1", headers=hdrs())
    same(r.as_numpy("predict"), want * 2, f"http sum binary={binary}")
    assert r.get_response()["model_version"] == "2" and r.get_response()["id"] == "r-1", r.get_response()
    for algo in ("gzip", "deflate"):
        # Compressed request bodies; the answer comes uncompressed (allowed
        # by HTTP, and read as such by tritonclient).
        r = c.infer("sum", [inp], headers=hdrs(), request_compression_algorithm=algo, response_compression_algorithm=algo)
        same(r.as_numpy("predict"), want * 2, f"http sum binary={binary} compressed {algo}")
    for out_binary in (True, False):
        out = th.InferRequestedOutput("predict", binary_data=out_binary)
        r = c.infer("sum", [inp], model_version="1", outputs=[out], headers=hdrs())
        same(r.as_numpy("predict"), want, f"http sum v1 binary={binary} out_binary={out_binary}")

    inputs = []
    for name, arr in echo.items():
        i = th.InferInput(name, list(arr.shape), tg.np_to_triton_dtype(arr.dtype))
        i.set_data_from_numpy(arr, binary_data=binary)
        inputs.append(i)
    for out_binary in (True, False):
        outs = [th.InferRequestedOutput(name, binary_data=out_binary) for name in echo]
        r = c.infer("echo", inputs, outputs=outs, headers=hdrs())
        for name, arr in echo.items():
            if not out_binary and arr.dtype.kind == "f":
                # JSON has no infinities: Atrium writes null, read as NaN.
                arr = np.where(np.isinf(arr), np.nan, arr).astype(arr.dtype)
            same(r.as_numpy(name), arr, f"http echo {name} binary={binary} out_binary={out_binary}")

bad = th.InferInput("x", [2, 4], "FP32")
bad.set_data_from_numpy(np.zeros((2, 4), dtype=np.float32))
expect_error(lambda: c.infer("nope", [bad], headers=hdrs()), "404", 'no registered model "nope"', "http unknown model")
expect_error(lambda: c.infer("loading", [bad], headers=hdrs()), "503", "loading", "http not ready")
expect_error(lambda: c.infer("broken", [bad], headers=hdrs()), "500", "internal error (request id", "http internal")
u8 = th.InferInput("x", [2], "UINT8")
u8.set_data_from_numpy(np.array([1, 2], dtype=np.uint8))
expect_error(lambda: c.infer("sum", [u8], headers=hdrs()), "400", 'inputs[0] "x": datatype UINT8 is not supported', "http uint8")
expect_error(lambda: c.infer("sum", [bad]), "401", "", "http without a token")

# --- gRPC ---
# gRPC metadata keys are lower case: grpc refuses "Authorization".
G = {"authorization": "Bearer " + token}
g = tg.InferenceServerClient(grpc_url)
assert g.is_server_live(), "grpc live"
assert g.is_server_ready(), "grpc ready"
assert "binary_tensor_data" in g.get_server_metadata(headers=G).extensions
assert g.is_model_ready("sum", headers=G), "grpc model ready"
assert g.get_model_metadata("sum", headers=G).platform == "atrium_gbdt"

inp = tg.InferInput("x", list(x.shape), "FP32")
inp.set_data_from_numpy(x)
r = g.infer("sum", [inp], request_id="g-1", headers=G)
same(r.as_numpy("predict"), want * 2, "grpc sum")
resp = r.get_response()
assert resp.model_version == "2" and resp.id == "g-1", resp
r = g.infer("sum", [inp], model_version="1", outputs=[tg.InferRequestedOutput("predict")], headers=G)
same(r.as_numpy("predict"), want, "grpc sum v1")

inputs = []
for name, arr in echo.items():
    i = tg.InferInput(name, list(arr.shape), tg.np_to_triton_dtype(arr.dtype))
    i.set_data_from_numpy(arr)
    inputs.append(i)
r = g.infer("echo", inputs, headers=G)
for name, arr in echo.items():
    same(r.as_numpy(name), arr, f"grpc echo {name}")

gbad = tg.InferInput("x", [2, 4], "FP32")
gbad.set_data_from_numpy(np.zeros((2, 4), dtype=np.float32))
expect_error(lambda: g.infer("nope", [gbad], headers=G), "StatusCode.NOT_FOUND", 'no registered model "nope"', "grpc unknown model")
expect_error(lambda: g.infer("loading", [gbad], headers=G), "StatusCode.UNAVAILABLE", "loading", "grpc not ready")
expect_error(lambda: g.infer("broken", [gbad], headers=G), "StatusCode.INTERNAL", "internal error (request id", "grpc internal")
expect_error(lambda: g.infer("sum", [gbad]), "StatusCode.UNAUTHENTICATED", "authentication required", "grpc without a token")

print("ok")
