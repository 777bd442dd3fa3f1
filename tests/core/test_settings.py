"""Production mode: `check --deploy` is clean, and a missing secret key stops start-up."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_passes_with_no_warnings_in_production_mode():
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY="x7Rq-" + "k2" * 30,
        DJANGO_ALLOWED_HOSTS="oversight.example.org",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_mode_without_a_secret_key_refuses_to_start_and_says_which_variable():
    result = manage("check", DJANGO_DEBUG="0", DJANGO_ALLOWED_HOSTS="oversight.example.org")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr


def test_a_bad_boolean_is_named():
    result = manage("check", DJANGO_DEBUG="maybe")
    assert result.returncode != 0
    assert "DJANGO_DEBUG='maybe' is not a boolean" in result.stderr


def test_an_empty_database_or_redis_url_is_treated_as_unset():
    result = manage(
        "shell",
        "--no-imports",
        "-c",
        "from django.conf import settings as s; "
        "print(s.DATABASES['default']['ENGINE'], s.CELERY_TASK_ALWAYS_EAGER)",
        DATABASE_URL="",
        REDIS_URL="",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.db.backends.sqlite3", "True"]


def test_email_url_picks_the_backend_and_a_bad_scheme_is_named():
    smtp = manage(
        "shell",
        "--no-imports",
        "-c",
        "from django.conf import settings as s; "
        "print(s.EMAIL_BACKEND, s.EMAIL_HOST, s.EMAIL_PORT, s.EMAIL_HOST_USER, s.EMAIL_USE_TLS)",
        EMAIL_URL="smtp://mailer:s%40cret@mail.example.org:587?tls=1",
    )
    assert smtp.stdout.split() == [
        "django.core.mail.backends.smtp.EmailBackend", "mail.example.org", "587", "mailer", "True"
    ]  # fmt: skip
    bad = manage("check", EMAIL_URL="pigeon://loft")
    assert bad.returncode != 0
    assert "EMAIL_URL='pigeon://loft': the scheme must be one of" in bad.stderr
