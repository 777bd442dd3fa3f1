"""WSGI entry point for gunicorn (`gunicorn config.wsgi`) and runserver."""

import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application

from config import embedded

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

application = get_wsgi_application()

if settings.EMBEDDED_JOBS:
    # No broker, so no beat: this process runs the periodic jobs (config.embedded).
    embedded.start()
