"""MLflow 3's AuthServiceClient managing per-resource permissions on atrium serve.

argv: an admin token, then the password of user "ana" (role reader). The
admin grants ana READ on experiment A and NO_PERMISSIONS on B with the
unchanged client; ana's own client then reads A, is refused B and any write
to A; revoking B's grant gives ana her role's READ on it again.
"""

import os
import sys

from mlflow.server.auth.client import AuthServiceClient
from mlflow.tracking import MlflowClient

from checks import check, refused, run, use


def main():
    admin_token, ana_password = sys.argv[1:3]
    client = MlflowClient()
    auth = AuthServiceClient(os.environ["MLFLOW_TRACKING_URI"])

    use(token=admin_token)
    exp_a = client.create_experiment("grants-A")
    exp_b = client.create_experiment("grants-B")
    run_a = client.create_run(exp_a).info.run_id
    auth.grant_user_permission("ana", "experiment", exp_a, "READ")
    auth.grant_user_permission("ana", "experiment", exp_b, "NO_PERMISSIONS")
    got = auth.get_user_permission("ana", "experiment", exp_a)
    check(got.allowed and got.permission == "READ", f"get_user_permission on A: {got.to_json()}")
    got = auth.get_user_permission("ana", "experiment", exp_b)
    check(not got.allowed and got.permission == "NO_PERMISSIONS", f"get_user_permission on B: {got.to_json()}")
    check(refused(lambda: auth.grant_user_permission("ana", "prompt", "p", "READ"), "INVALID_PARAMETER_VALUE"),
          "a resource type Atrium does not grant on is refused (400)")

    use(username="ana", password=ana_password)
    check(client.get_experiment(exp_a).name == "grants-A", "READ on A: get_experiment(A)")
    check(client.get_run(run_a).info.experiment_id == exp_a, "READ on A: get_run of A's run")
    check(refused(lambda: client.get_experiment(exp_b), "PERMISSION_DENIED"), "NO_PERMISSIONS on B: get_experiment(B) refused (403)")
    check(refused(lambda: client.log_metric(run_a, "auc", 0.5), "PERMISSION_DENIED"), "READ on A: log_metric refused (403)")
    check(refused(lambda: auth.grant_user_permission("ana", "experiment", exp_b, "MANAGE"), "PERMISSION_DENIED"),
          "a non-admin cannot grant (403)")

    use(token=admin_token)
    auth.revoke_user_permission("ana", "experiment", exp_b)
    use(username="ana", password=ana_password)
    check(client.get_experiment(exp_b).name == "grants-B", "after revoke_user_permission: the role (reader) reads B")


if __name__ == "__main__":
    run(main)
