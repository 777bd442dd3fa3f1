"""WSGI entry point for gunicorn (`gunicorn config.wsgi`) and runserver."""

import gc
import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application

from config import embedded

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

application = get_wsgi_application()

if settings.EMBEDDED_JOBS:
    # No broker, so no beat: this process runs the periodic jobs (config.embedded).
    embedded.start()

# Everything loaded so far (Django, the apps, numpy, sklearn...) lives as long as the process:
# move it out of the collector's generations, so that the collections a request's garbage
# triggers do not walk it again and again (and, with `gunicorn --preload`, forked workers
# share those pages instead of copying them when the collector touches them).
gc.freeze()

# Collect less often than the default (700, 10, 10). A bulk of 1,000 decisions allocates some
# 200,000 objects that live for the request; at the default the collector ran ~90 times per
# bulk, walking the same request data again and again (15-35 ms of a ~150 ms request's CPU).
# At these thresholds it runs a few times per bulk (~5 ms); request garbage is acyclic for the
# most part and freed by reference counting anyway.
GC_THRESHOLDS = (10_000, 50, 100)
gc.set_threshold(*GC_THRESHOLDS)
