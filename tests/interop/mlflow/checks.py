"""Assertions and fixtures shared by the interop scripts of this directory."""

import os
import sys


def check(cond, what):
    """Raise with `what` unless cond holds; print it as passed otherwise."""
    if not cond:
        raise AssertionError(what)
    print("ok:", what)


def write(path, data):
    """Write str or bytes to path, creating its directories."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)


def run(main):
    """Run main, ending with one clear FAILED line for the Go test's log."""
    try:
        main()
    except Exception as e:
        print(f"FAILED: {type(e).__name__}: {e}", file=sys.stderr)
        raise


def use(token=None, username=None, password=None):
    """Make the mlflow client send token, or username and password (basic
    auth), or nothing, the way users set them: in the environment."""
    for k in ("MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        os.environ.pop(k, None)
    if token:
        os.environ["MLFLOW_TRACKING_TOKEN"] = token
    if username:
        os.environ["MLFLOW_TRACKING_USERNAME"] = username
        os.environ["MLFLOW_TRACKING_PASSWORD"] = password


def refused(fn, code):
    """Whether fn raises an MlflowException carrying the error code."""
    from mlflow.exceptions import MlflowException

    try:
        fn()
    except MlflowException as e:
        return code in str(e) or code in getattr(e, "error_code", "")
    return False
