"""Web and worker processes freeze what start-up allocated (issue 15, part 3); web processes
collect less often than the default."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path

from celery.signals import worker_process_init

ROOT = Path(__file__).resolve().parents[2]


def test_a_worker_process_freezes_its_start_up_objects():
    gc.unfreeze()
    try:
        worker_process_init.send(sender=None)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_the_web_process_freezes_its_start_up_objects():
    # In a process of its own: loading the WSGI application here would start it in the tests'.
    code = "import gc, config.wsgi; print(gc.get_threshold()[0], gc.get_freeze_count())"
    env = {**os.environ, "EMBEDDED_JOBS": "0", "DJANGO_SETTINGS_MODULE": "config.settings"}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    threshold, frozen = map(int, out.stdout.split()[-2:])
    assert frozen > 10_000
    # ...and collects less often than the default: a bulk's request data is walked a few
    # times, not ~90 (config.wsgi).
    assert threshold >= 10_000
