"""Web and worker processes freeze what start-up allocated (issue 15, part 3)."""

from __future__ import annotations

import gc
import importlib

from celery.signals import worker_process_init


def test_a_worker_process_freezes_its_start_up_objects():
    gc.unfreeze()
    try:
        worker_process_init.send(sender=None)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_the_web_process_freezes_its_start_up_objects(settings, monkeypatch):
    settings.EMBEDDED_JOBS = False
    gc.unfreeze()
    try:
        import config.wsgi

        importlib.reload(config.wsgi)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
