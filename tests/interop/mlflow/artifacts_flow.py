"""The mlflow client's artifact repository against Atrium's artifact proxy.

Uses mlflow-artifacts:/ URIs exactly as runs and logged models do, without any
tracking call: upload files and directory trees, list, download and compare
byte for byte, delete, a multipart upload, and rejected traversal attempts.
Run by interop_test.go with MLFLOW_TRACKING_URI pointing at `atrium serve`.
"""

import filecmp
import os
import random
import tempfile

import requests
from mlflow.exceptions import MlflowException
from mlflow.store.artifact.mlflow_artifacts_repo import MlflowArtifactsRepository

from checks import check, run, write

URI = os.environ["MLFLOW_TRACKING_URI"]
ROOT = f"mlflow-artifacts:/interop-{random.randrange(1 << 30)}/run/artifacts"


def main():
    repo = MlflowArtifactsRepository(ROOT, tracking_uri=URI)
    src = tempfile.mkdtemp()
    write(os.path.join(src, "notes.txt"), b"hello atrium\n")
    write(os.path.join(src, "tree", "a.csv"), b"x,y\n1,2\n")
    write(os.path.join(src, "tree", "sub", "b.json"), b'{"k": [1, 2, 3]}')
    write(os.path.join(src, "tree", "sub", "deeper", "weights.bin"), os.urandom(3 << 20))
    write(os.path.join(src, "tree", "sp ace & ünïcode.txt"), "données".encode())
    write(os.path.join(src, "tree", "empty"), b"")

    repo.log_artifact(os.path.join(src, "notes.txt"))
    repo.log_artifact(os.path.join(src, "notes.txt"), "docs")
    repo.log_artifacts(os.path.join(src, "tree"), "tree")

    top = [(f.path, f.is_dir) for f in repo.list_artifacts()]
    check(top == [("docs", True), ("notes.txt", False), ("tree", True)], f"list root: {top}")
    sub = {f.path: f.file_size for f in repo.list_artifacts("tree/sub")}
    check(sub == {"tree/sub/b.json": 16, "tree/sub/deeper": None}, f"list tree/sub: {sub}")
    check(repo.list_artifacts("notes.txt") == [], "listing a file is empty")
    check(repo.list_artifacts("missing") == [], "listing a missing dir is empty")

    dst = tempfile.mkdtemp()
    local = repo.download_artifacts("tree", dst)
    cmp = filecmp.dircmp(os.path.join(src, "tree"), local)

    def same(c):
        return not (c.left_only or c.right_only or c.diff_files or c.funny_files) and all(
            same(s) for s in c.subdirs.values()
        )

    check(same(cmp), "downloaded tree equals the uploaded one")
    for name in ["notes.txt", "tree/sub/deeper/weights.bin", "tree/sp ace & ünïcode.txt"]:
        got = repo.download_artifacts(name, tempfile.mkdtemp())
        check(filecmp.cmp(got, os.path.join(src, name.replace("tree/", "tree/", 1)), shallow=False), f"download {name}")

    repo.delete_artifacts("tree/sub")
    left = [f.path for f in repo.list_artifacts("tree")]
    check("tree/sub" not in left and "tree/a.csv" in left, f"delete tree/sub: {left}")
    try:
        repo.download_artifacts("tree/sub/b.json", tempfile.mkdtemp())
        raise AssertionError("download of a deleted file succeeded")
    except (MlflowException, requests.HTTPError, OSError) as e:
        check("404" in str(e) or "RESOURCE_DOES_NOT_EXIST" in str(e) or "not found" in str(e).lower(), f"deleted file is gone: {type(e).__name__}")

    # Multipart upload, as the client does it for big files when enabled.
    os.environ["MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD"] = "true"
    os.environ["MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE"] = str(1 << 20)
    os.environ["MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE"] = str(1 << 20)
    big = os.path.join(src, "model.bin")
    write(big, os.urandom((5 << 20) + 12345))
    repo.log_artifact(big, "mpu")
    got = repo.download_artifacts("mpu/model.bin", tempfile.mkdtemp())
    check(filecmp.cmp(got, big, shallow=False), "multipart upload of 5 MiB in 1 MiB parts round-trips")
    os.environ["MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD"] = "false"

    # Traversal through the raw API: 400 with MLflow's error body, never a 5xx.
    base = URI.rstrip("/") + "/api/2.0/mlflow-artifacts/artifacts"
    for bad in ["%2e%2e%2f%2e%2e%2fetc%2fpasswd", "%252e%252e/secret", "a%00b", "..%5c..%5cwin.ini", "x%23y"]:
        r = requests.put(f"{base}/{bad}", data=b"pwned", allow_redirects=False)
        body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
        check(r.status_code == 400 and body.get("error_code") == "INVALID_PARAMETER_VALUE", f"PUT {bad} -> {r.status_code} {body}")
    r = requests.get(base, params={"path": "../../etc"})
    check(r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE", "list ?path=../../etc -> 400")
    print("artifacts flow: all checks passed")


if __name__ == "__main__":
    run(main)
