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
