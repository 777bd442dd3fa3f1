"""Shared fixtures. Server-dependent tests skip, with the reason, where the server is missing."""

from __future__ import annotations

import os
import shutil

import pytest
from django.conf import settings

from config.celery import app as celery_app

ON_POSTGRES = settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
HAS_REDIS = bool(os.environ.get("REDIS_URL"))
CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
HAS_CHROMIUM = os.path.exists(CHROMIUM)

SKIPS = {
    "postgres": (
        not ON_POSTGRES,
        "needs PostgreSQL: run with DATABASE_URL=postgres://… (as .ci/run does)",
    ),
    "integration": (
        not (ON_POSTGRES and HAS_REDIS),
        "needs PostgreSQL and Redis: set DATABASE_URL=postgres://… and REDIS_URL=redis://…",
    ),
    "browser": (
        not HAS_CHROMIUM,
        "needs Chromium: apt-get install -y chromium (or set CHROMIUM_PATH)",
    ),
}


# CI's service run sets this: a missing server is then an error, not a quiet skip.
REQUIRED = {m.strip() for m in os.environ.get("OVERSIGHT_REQUIRE", "").split(",") if m.strip()}


def pytest_collection_modifyitems(config, items) -> None:
    missing = sorted(m for m in REQUIRED if SKIPS.get(m, (False, ""))[0])
    if missing:
        reasons = "; ".join(SKIPS[m][1] for m in missing)
        raise pytest.UsageError(f"OVERSIGHT_REQUIRE={','.join(missing)} but: {reasons}")
    for item in items:
        for marker, (skip, reason) in SKIPS.items():
            if skip and marker in item.keywords:
                item.add_marker(pytest.mark.skip(reason=reason))


def pytest_configure(config) -> None:
    # Tests make hundreds of users; the real (slow on purpose) hasher would be most of the
    # suite's time. Production keeps Django's default PBKDF2.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Django's test client logs in without a request, which django-axes refuses; the lockout
    # has its own tests (tests/accounts/test_login_lockout.py), which switch it back on.
    settings.AXES_ENABLED = False
    # Seal audit events right after each commit on both databases, as the embedded default
    # does; tests of the sealer process (tests/audit/test_sealer.py) switch it off.
    settings.AUDIT_SEAL_INLINE = True
    # Throttle counters in this process's memory, cleared for every test (never a Redis
    # FLUSHDB: the broker may share that database).
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    # Every test client builds its own middleware, and WhiteNoise (serving static files from the
    # finders, as in development) would list every static file each time, some 60 ms a client.
    # Looking a file up when it is asked for serves the same files.
    settings.WHITENOISE_AUTOREFRESH = True


@pytest.fixture(autouse=True, scope="session")
def _eager_celery():
    """Unit tests run tasks in-process; integration tests switch this off themselves."""
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield


@pytest.fixture(autouse=True)
def _fresh_cache():
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture(scope="session")
def signer() -> str:
    from audit import note

    return note.generate_signer(settings.AUDIT_ORIGIN)


@pytest.fixture(autouse=True)
def _signing_key(settings, signer, tmp_path):
    """A checkpoint key for every test; exports and the checkpoint mirror in the test's own
    directory."""
    settings.AUDIT_SIGNING_KEY = signer
    settings.EXPORT_DIR = tmp_path / "exports"
    settings.AUDIT_CHECKPOINT_MIRROR = str(tmp_path / "checkpoints")


@pytest.fixture(autouse=True)
def _audit_triggers(request):
    """Keep the append-only triggers in place for every database test.

    Transactional tests end with a flush (TRUNCATE or DELETE), which the triggers refuse, so
    they are dropped just before that flush; every test then puts them back at its start
    (inside its own transaction, for ordinary tests)."""
    marker = request.node.get_closest_marker("django_db")
    transactional = "transactional_db" in request.fixturenames or bool(
        marker and marker.kwargs.get("transaction")
    )
    if marker is None and "db" not in request.fixturenames and not transactional:
        yield
        return
    request.getfixturevalue("transactional_db" if transactional else "db")
    from django.db import connection

    from audit.db import drop_triggers, install_triggers

    install_triggers(connection)
    yield
    if transactional:
        drop_triggers(connection)


from tests.fixtures import *  # noqa: E402, F403
