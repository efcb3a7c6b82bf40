"""The mlflow client against an atrium serve that requires authentication.

argv: an editor token, a reader user's name and password. The client is
unchanged: credentials come from MLFLOW_TRACKING_TOKEN or
MLFLOW_TRACKING_USERNAME/PASSWORD, as users set them.
"""

import os
import sys
import tempfile

import mlflow
from mlflow.tracking import MlflowClient

from checks import check, refused, run, use


def main():
    editor_token, reader, reader_password = sys.argv[1:4]
    client = MlflowClient()

    use()
    check(refused(lambda: client.search_experiments(), "UNAUTHENTICATED"), "anonymous search_experiments is refused (401)")

    use(token=editor_token)
    exp = client.create_experiment("auth-interop")
    run_ = client.create_run(exp)
    rid = run_.info.run_id
    client.log_metric(rid, "auc", 0.9)
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "notes.txt")
        with open(p, "w") as f:
            f.write("hello")
        client.log_artifact(rid, p)
    check(client.get_run(rid).data.metrics["auc"] == 0.9, "MLFLOW_TRACKING_TOKEN (editor): create experiment, run, metric")
    check([a.path for a in client.list_artifacts(rid)] == ["notes.txt"], "MLFLOW_TRACKING_TOKEN (editor): artifact upload through the proxy")
    check(refused(lambda: client.delete_run(rid), "PERMISSION_DENIED"), "editor cannot delete a run (403)")

    # A multipart upload: the client PUTs each part to the URL create handed
    # out with a bare requests.put (no credential), so the upload id in the
    # URL must be the part's credential.
    os.environ["MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD"] = "true"
    os.environ["MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE"] = str(1 << 20)
    os.environ["MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE"] = str(1 << 20)
    with tempfile.TemporaryDirectory() as d:
        big = os.path.join(d, "model.bin")
        data = os.urandom((3 << 20) + 7)
        with open(big, "wb") as f:
            f.write(data)
        client.log_artifact(rid, big, "mpu")
        got = client.download_artifacts(rid, "mpu/model.bin", d)
        check(open(got, "rb").read() == data, "multipart upload (3 parts) with a token, through the proxy")
    os.environ["MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD"] = "false"

    use(username=reader, password=reader_password)
    check(client.get_run(rid).data.metrics["auc"] == 0.9, "MLFLOW_TRACKING_USERNAME/PASSWORD (reader): get_run")
    with tempfile.TemporaryDirectory() as d:
        client.download_artifacts(rid, "notes.txt", d)
        check(open(os.path.join(d, "notes.txt")).read() == "hello", "reader downloads the artifact")
    check(refused(lambda: client.log_metric(rid, "auc", 0.1), "PERMISSION_DENIED"), "reader cannot log a metric (403)")
    use(username=reader, password="wrong")
    check(refused(lambda: client.get_run(rid), "UNAUTHENTICATED"), "a wrong password is refused (401)")

    use(username="ci-bot", password=editor_token)
    client.log_param(rid, "lr", "0.1")
    check(client.get_run(rid).data.params["lr"] == "0.1", "basic auth with a token as the password (editor)")


if __name__ == "__main__":
    run(main)
