"""The Celery application: `celery -A config worker` and `celery -A config beat`."""

from __future__ import annotations

import gc
import os

from celery import Celery
from celery.signals import worker_init, worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("oversight")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
@worker_process_init.connect
def _freeze_start_up_objects(**_: object) -> None:
    """After start-up (in the main worker process before it forks, and in each child once it
    is ready), move what start-up allocated out of the collector's generations: it lives as
    long as the process, and collections triggered by tasks' garbage need not walk it."""
    gc.freeze()
