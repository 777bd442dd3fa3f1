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
