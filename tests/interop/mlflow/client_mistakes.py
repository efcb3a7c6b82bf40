"""Client mistakes through the official mlflow client: each must come back as a
4xx with MLflow's error code (the client retries 5xx, and interop_test.go sets
MLFLOW_HTTP_REQUEST_MAX_RETRIES=0 so a 5xx would surface as INTERNAL_ERROR),
and must store nothing. Also the engine-independent search semantics and the
source forms the registry accepts or refuses.

Run by interop_test.go with MLFLOW_TRACKING_URI pointing at `atrium serve`.
"""

import random
import time

from mlflow import MlflowClient
from mlflow.entities import Metric, Param
from mlflow.exceptions import MlflowException

from checks import check, run

SUFFIX = f"{random.randrange(1 << 30):x}"


def refused(what, code, fn, *args, **kwargs):
    """Call fn and check it raises MlflowException with error code `code`."""
    try:
        fn(*args, **kwargs)
    except MlflowException as e:
        check(e.error_code == code, f"{what}: {e.error_code} ({str(e)[:120]})")
        return
    raise AssertionError(f"{what}: accepted, want {code}")


def main():
    client = MlflowClient()
    # The REST store sends one request per call, without the client's own
    # splitting of big batches.
    store = client._tracking_client.store
    exp = client.create_experiment(f"mistakes-{SUFFIX}")
    run_id = client.create_run(exp).info.run_id
    now = int(time.time() * 1000)

    refused("duplicate experiment name", "RESOURCE_ALREADY_EXISTS", client.create_experiment, f"mistakes-{SUFFIX}")
    refused("unknown run", "RESOURCE_DOES_NOT_EXIST", client.get_run, "0" * 32)
    client.log_param(run_id, "alpha", "1")
    refused("changing a param", "INVALID_PARAMETER_VALUE", client.log_param, run_id, "alpha", "2")
    refused("1001 metrics in one log_batch", "INVALID_PARAMETER_VALUE",
            store.log_batch, run_id, [Metric(f"m{i}", 1.0, now, 0) for i in range(1001)], [], [])
    refused("101 params in one log_batch", "INVALID_PARAMETER_VALUE",
            store.log_batch, run_id, [], [Param(f"p{i}", "v") for i in range(101)], [])
    check(client.get_run(run_id).data.params == {"alpha": "1"}, "refused batches stored nothing")

    # Filters: bad grammar, bad page tokens, and filters past the engines' limits.
    refused("filter with OR", "INVALID_PARAMETER_VALUE", client.search_runs, [exp], "metrics.a > 1 or metrics.b < 2")
    refused("bad page token", "INVALID_PARAMETER_VALUE", client.search_runs, [exp], "", page_token="not-a-token")
    many = " and ".join(f"metrics.m{i} > 0" for i in range(2000))
    refused("filter of 2,000 conditions", "INVALID_PARAMETER_VALUE", client.search_runs, [exp], many)
    values = ",".join(f"'{i}'" for i in range(9000))
    lists = " and ".join(f"attributes.run_id IN ({values})" for _ in range(5))
    refused("filter of 45,000 list values", "INVALID_PARAMETER_VALUE", client.search_runs, [exp], lists)
    refused("NUL in a filter value", "INVALID_PARAMETER_VALUE", client.search_runs, [exp], "params.alpha = '\x00'")

    # LIKE: '\' escapes '_' and '%' on both engines.
    for v in ["a_b", "axb"]:
        r = client.create_run(exp).info.run_id
        client.log_param(r, "like", v)
    got = sorted(x.data.params["like"] for x in client.search_runs([exp], "params.like LIKE 'a\\_b'"))
    check(got == ["a_b"], f"LIKE 'a\\_b' matches {got}")
    got = sorted(x.data.params["like"] for x in client.search_runs([exp], "params.like LIKE 'a_b'"))
    check(got == ["a_b", "axb"], f"LIKE 'a_b' matches {got}")

    # Deleted runs take no more data.
    client.delete_run(run_id)
    refused("metric on a deleted run", "INVALID_PARAMETER_VALUE", client.log_metric, run_id, "m", 1.0)

    # Artifact locations and sources outside the server's artifact root.
    for loc in ["file:///etc", "/etc", "s3://bucket/x", "mlflow-artifacts:/../../etc",
                "mlflow-artifacts:..", "mlflow-artifacts:%2e%2e/etc"]:
        refused(f"artifact_location {loc}", "INVALID_PARAMETER_VALUE",
                client.create_experiment, f"loc-{SUFFIX}-{random.randrange(1 << 30)}", artifact_location=loc)
    model = f"mistakes-{SUFFIX}"
    client.create_registered_model(model)
    live = client.create_run(exp).info.run_id
    for src in ["file:///etc/passwd", "/etc/passwd", f"runs:/{live}/../../../etc", f"runs:/{live}/%2e%2e/%2e%2e",
                f"mlflow-artifacts:../{live}/artifacts", "http://169.254.169.254/latest"]:
        refused(f"model version source {src}", "INVALID_PARAMETER_VALUE", client.create_model_version, model, src, run_id=live)
    v1 = client.create_model_version(model, f"runs:/{live}/model", run_id=live)
    copy = client.create_model_version(model, f"models:/{model}/latest")
    check(copy.source == f"models:/{model}/{v1.version}" and copy.run_id == live, f"models:/{model}/latest resolves to {copy.source}")
    refused("reserved alias", "INVALID_PARAMETER_VALUE", client.set_registered_model_alias, model, "latest", v1.version)
    refused("alias of a missing version", "RESOURCE_DOES_NOT_EXIST", client.set_registered_model_alias, model, "a", "99")
    print("client mistakes: all checks passed")


if __name__ == "__main__":
    run(main)
