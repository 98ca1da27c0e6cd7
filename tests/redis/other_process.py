"""Run code in a real second Python process, on a cache of the same namespace."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_other_process(url: str, namespace: str, code: str) -> str:
    """Run ``code`` with ``cache`` on Redis at ``url`` in ``namespace``; its stdout."""
    script = (
        "from pytest_conncache import ConnectionCache\n"
        f"cache = ConnectionCache.from_url({url!r}, namespace={namespace!r})\n"
        + textwrap.dedent(code)
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout
