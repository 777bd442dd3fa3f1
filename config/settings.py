"""Oversight settings: one file, driven by the environment.

With nothing set, a checkout runs on SQLite with Celery tasks executed in-process, which is what
`make run` and the bare-machine `make test` use. Production sets DATABASE_URL (PostgreSQL),
REDIS_URL (the Celery broker), DJANGO_DEBUG=0, DJANGO_SECRET_KEY and DJANGO_ALLOWED_HOSTS.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def envbool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    if value.strip().lower() in _TRUE:
        return True
    if value.strip().lower() in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean: use 1 or 0")


def envint(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    try:
        return int(value) if value else default
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer") from None


def envfloat(name: str, default: float) -> float:
    value = os.environ.get(name, "")
    try:
        return float(value) if value else default
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a number") from None


def envlist(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def _prepare_threshold(value: str | None) -> int | None:
    """DATABASE_PREPARE_THRESHOLD: unset or empty is 5; "off" (or "none") is None, psycopg's
    never prepare; a number is psycopg's prepare_threshold (0 prepares on the first run)."""
    text = (value or "").strip().lower()
    if text in ("off", "none", "false", "no"):
        return None
    try:
        threshold = int(text) if text else 5
    except ValueError:
        threshold = -1
    if threshold < 0:
        raise ImproperlyConfigured(
            f"DATABASE_PREPARE_THRESHOLD={value!r} is not a count of runs (0 or more) or off"
        )
    return threshold


DEBUG = envbool("DJANGO_DEBUG", True)

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set. Production mode (DJANGO_DEBUG=0) needs a long random "
            "secret in DJANGO_SECRET_KEY, for example the output of "
            "`python -c 'import secrets; print(secrets.token_urlsafe(64))'`."
        )
    # Development only: DEBUG is on, so this key never signs anything that matters.
    SECRET_KEY = "dev-only-insecure-key-set-DJANGO_SECRET_KEY-in-production"  # noqa: S105

ALLOWED_HOSTS = envlist("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = envlist("DJANGO_CSRF_TRUSTED_ORIGINS")
SITE_URL = os.environ.get("SITE_URL", "http://127.0.0.1:8000")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "axes",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    # Oversight's apps, lowest layer first (each imports only those above it in this list;
    # import-linter checks it: see pyproject.toml).
    "core",
    "audit",
    "outbox",
    "accounts",
    "models_registry",
    "reviews",
    "appeals",
    "learning",
    "oversight",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Body size per endpoint and unstorable text, before any view (needs request.user).
    "core.middleware.RequestGuard",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Login lockouts (django-axes); last, as it asks.
    "axes.middleware.AxesMiddleware",
]

# Request bodies: 2.5 MB unless an endpoint takes more. The bulk ingest takes its documented
# maximum, 1,000 items of at most REVIEW_MAX_ITEM_BYTES each (refused by item beyond that); an
# appeal may carry a 5 MB attachment; a version upload its artifact and training data.
MAX_ITEM_BYTES = envint("MAX_ITEM_BYTES", 32 * 1024)
APPEAL_ATTACHMENT_MAX_BYTES = 5 * 1024 * 1024
REQUEST_BODY_LIMIT = envint("REQUEST_BODY_LIMIT", 2_621_440)
REQUEST_BODY_LIMITS = [
    (r"^/api/v1/decisions/bulk/$", 1000 * MAX_ITEM_BYTES + 64 * 1024),
    # The attachment travels base64 in the API's JSON (4/3 of its size), as a file in the form.
    (r"^/api/v1/decisions/\d+/appeal/$", APPEAL_ATTACHMENT_MAX_BYTES * 4 // 3 + 256 * 1024),
    (
        r"^/my-decision/appeal/$",
        APPEAL_ATTACHMENT_MAX_BYTES + 256 * 1024,
        "appeals/portal/too_large.html",  # the person's own page, in plain words
    ),
    (r"^/api/v1/models/[^/]+/versions/$", envint("VERSION_UPLOAD_MAX_BYTES", 200 * 1024 * 1024)),
    (r"^/models/[^/]+/versions/", envint("VERSION_UPLOAD_MAX_BYTES", 200 * 1024 * 1024)),
]
# Django's own cap on non-file body data must not refuse first what the table above admits.
DATA_UPLOAD_MAX_MEMORY_SIZE = max(entry[1] for entry in REQUEST_BODY_LIMITS)

# Login lockouts: after LOGIN_FAILURE_LIMIT failed logins for one account, or from one address,
# that account (or address) cannot log in for LOGIN_LOCKOUT_MINUTES. Attempts are kept in the
# database (shared by every web process); failures and lockouts are audited (accounts app).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = envint("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=envint("LOGIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False
AXES_IPWARE_PROXY_COUNT = envint("DJANGO_PROXY_COUNT", 0) or None

# Content-Security-Policy: scripts, styles, images and forms from this site only; no inline
# script or style anywhere (the pages carry none), no framing.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "core.context_processors.roles",
            ],
        },
    },
]

# Database: SQLite by default, PostgreSQL when DATABASE_URL says so.
DATABASES = {
    "default": dj_database_url.parse(
        # An empty DATABASE_URL= is unset, as for every variable here.
        os.environ.get("DATABASE_URL", "").strip() or f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=envint("DATABASE_CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        # BEGIN IMMEDIATE takes SQLite's write lock when a transaction starts, so writers
        # queue up instead of failing half-way with "database is locked"; it is also what
        # serializes audit-chain appends on SQLite.
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Parameters travel separately from the SQL instead of being quoted into it: bulk inserts
    # of JSON (Django sends them as arrays to UNNEST) skip client-side escaping entirely.
    # Prepared statements (psycopg's server-side prepare): a statement run
    # DATABASE_PREPARE_THRESHOLD times on a connection is prepared there and its plan reused,
    # which cuts the server's parse and plan work on the hot paths (claims, answers). They
    # need server-side binding (above) and a connection kept to one session: set the variable
    # to "off" (or empty) behind PgBouncer in transaction pooling mode. Django's own default
    # is off; ours is 5.
    DATABASES["default"]["OPTIONS"] = {
        "server_side_binding": True,
        "prepare_threshold": _prepare_threshold(os.environ.get("DATABASE_PREPARE_THRESHOLD")),
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Production serves collected files (`collectstatic`); development serves them from the apps.
STATIC_ROOT = BASE_DIR / "staticfiles" if not DEBUG else None
WHITENOISE_USE_FINDERS = DEBUG
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
# Where Oversight keeps files it writes (exports, the local checkpoint signing key).
DATA_DIR = Path(os.environ.get("OVERSIGHT_DATA_DIR", BASE_DIR / "var"))

# Production hardening: `manage.py check --deploy` passes with no warnings when DEBUG is off.
if not DEBUG:
    SECURE_SSL_REDIRECT = envbool("DJANGO_SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = envint("DJANGO_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    if envbool("DJANGO_BEHIND_TLS_PROXY", False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "core.auth.ServiceTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # JSON only; the one upload (a model version's artifact) takes multipart on its own view.
    "DEFAULT_PARSER_CLASSES": ["core.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "core.api_schema.OversightAutoSchema",
    "EXCEPTION_HANDLER": "core.errors.api_exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "DEFAULT_PAGINATION_CLASS": None,
    # Per token (or person), and per address for requests without credentials; counted in
    # the shared cache (Redis in production). 429 with Retry-After beyond.
    "DEFAULT_THROTTLE_CLASSES": ["core.throttling.CallerThrottle", "core.throttling.AnonThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "caller": os.environ.get("API_RATE_PER_CALLER") or "6000/minute",
        "anon": os.environ.get("API_RATE_ANONYMOUS") or "120/minute",
    },
}
# Wrong API tokens from one address, per minute, before it gets 429s (token guessing).
API_BAD_TOKENS_PER_MINUTE = envint("API_BAD_TOKENS_PER_MINUTE", 20)
if DEBUG:
    REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"].append(
        "rest_framework.renderers.BrowsableAPIRenderer"
    )

SPECTACULAR_SETTINGS = {
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.api_schema.nullable_references",
        "core.api_schema.tag_descriptions",
    ],
    "TITLE": "Oversight API",
    "DESCRIPTION": (
        "Human oversight of machine-learning decisions: model registry, decision ingestion and "
        "routing, the review queue, appeals and the tamper-evident audit trail. Model services "
        "authenticate with `Authorization: Token <token>` (see `manage.py create_service_token`)."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI's files come from the drf-spectacular-sidecar package, not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # One name per choice set, wherever a serializer uses it.
    "ENUM_NAME_OVERRIDES": {
        "DecisionStatusEnum": "reviews.models.Decision.Status",
        "ReviewTaskStateEnum": "reviews.models.ReviewTask.State",
        "ExportStatusEnum": "oversight.models.Export.Status",
        "AlertStateEnum": ["open", "acknowledged", "resolved"],
        "ReviewTaskKindEnum": "reviews.models.ReviewTask.Kind",
        "AlertConditionEnum": "oversight.monitoring.KINDS",
        "AppealStatusEnum": "appeals.models.Appeal.Status",
    },
}

# Celery: Redis when REDIS_URL is set; otherwise tasks run eagerly in-process.
REDIS_URL = os.environ.get("REDIS_URL", "").strip()

# The cache holds throttling counters: Redis when REDIS_URL is set (shared by every web
# process), else this process's memory (the embedded default serves from one process).
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "oversight-cache",
    }
    if REDIS_URL
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
# Where tasks go unless routed: one queue per deployment sharing a Redis (and per test worker).
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_DEFAULT_QUEUE", "").strip() or "celery"
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 15 * 60
CELERY_TASK_SOFT_TIME_LIMIT = 14 * 60
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE: dict[str, dict] = {
    "expire-review-leases": {"task": "reviews.tasks.expire_leases", "schedule": 60.0},
    "sign-audit-checkpoint": {
        "task": "audit.tasks.sign_checkpoint",
        "schedule": envfloat("AUDIT_CHECKPOINT_SECONDS", 60.0),
    },
    "sweep-verifications": {"task": "audit.tasks.sweep_verifications", "schedule": 60.0},
    "sweep-exports": {"task": "oversight.tasks.sweep_exports", "schedule": 60.0},
    "sweep-outbox": {"task": "outbox.tasks.sweep", "schedule": 60.0},
    "sweep-learning": {"task": "learning.tasks.sweep", "schedule": 60.0},
    "verify-audit-chain-daily": {
        "task": "audit.tasks.verify_chain_daily",
        "schedule": envfloat("AUDIT_VERIFY_SECONDS", 24 * 3600.0),
    },
    "evaluate-oversight-alerts": {
        "task": "oversight.tasks.evaluate_models",
        "schedule": envfloat("ALERT_EVALUATE_SECONDS", 3600.0),
    },
}
# Without a broker there is no beat: the web process runs the schedule above itself, in one
# thread started with the WSGI application (config.embedded; `make run`). Off with a broker.
EMBEDDED_JOBS = envbool("EMBEDDED_JOBS", CELERY_TASK_ALWAYS_EAGER)

# The audit trail's signed checkpoints. The key is a C2SP signer string ("PRIVATE+KEY+...")
# from the environment, or a file outside the database (`manage.py audit_keygen` makes one;
# `make run` does so on first start). Its name is the log's origin.
AUDIT_ORIGIN = os.environ.get("AUDIT_ORIGIN", "oversight.local/audit")
AUDIT_SIGNING_KEY = os.environ.get("OVERSIGHT_SIGNING_KEY", "")
AUDIT_SIGNING_KEY_FILE = Path(
    os.environ.get("OVERSIGHT_SIGNING_KEY_FILE", DATA_DIR / "audit-signing.key")
)
# Publishing checkpoints outside the database. Each new one is written to the mirror
# AUDIT_CHECKPOINT_MIRROR (a directory, one signed note per checkpoint, or a .jsonl file; on
# shared storage in production; "off" turns it off), and POSTed to each witness in
# AUDIT_WITNESS_URLS (C2SP tlog-witness add-checkpoint). Cosignatures are kept when they are
# signed by a key in AUDIT_WITNESS_KEYS (the witnesses' vkeys).
AUDIT_CHECKPOINT_MIRROR = os.environ.get("AUDIT_CHECKPOINT_MIRROR") or str(DATA_DIR / "checkpoints")
AUDIT_WITNESS_URLS = envlist("AUDIT_WITNESS_URLS")
AUDIT_WITNESS_KEYS = envlist("AUDIT_WITNESS_KEYS")
# Sealing: events are recorded staged in their change's transaction and sealed into the log by
# one sealer. AUDIT_SEAL_INLINE seals in-process right after each commit (the default with
# SQLite, where no sealer process runs); production runs `manage.py audit_sealer`. An alert is
# raised when the oldest staged event waits longer than AUDIT_SEAL_MAX_LAG_SECONDS.
AUDIT_SEAL_INLINE = envbool(
    "AUDIT_SEAL_INLINE", DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"
)
AUDIT_SEAL_MAX_LAG_SECONDS = envint("AUDIT_SEAL_MAX_LAG_SECONDS", 60)
AUDIT_SEALER_STANDBY_SECONDS = envfloat("AUDIT_SEALER_STANDBY_SECONDS", 5.0)
# Decision-log exports are written here (shared by web and worker in production).
EXPORT_DIR = Path(os.environ.get("OVERSIGHT_EXPORT_DIR", DATA_DIR / "exports"))

# The outbox: messages that must not be lost (e-mail, labels, webhooks). A message that fails
# is tried again after OUTBOX_BACKOFF_SECONDS, doubling each time (at most an hour), and is
# dead (an alert) after OUTBOX_MAX_ATTEMPTS. A worker's claim on a message lasts
# OUTBOX_LEASE_SECONDS; a message whose worker died is picked up by the sweep after that.
OUTBOX_MAX_ATTEMPTS = envint("OUTBOX_MAX_ATTEMPTS", 8)
OUTBOX_BACKOFF_SECONDS = envint("OUTBOX_BACKOFF_SECONDS", 30)
OUTBOX_LEASE_SECONDS = envint("OUTBOX_LEASE_SECONDS", 300)

# The label loop (learning/). Webhook secrets are stored encrypted with a key derived from
# OVERSIGHT_WEBHOOK_KEY (default: DJANGO_SECRET_KEY; changing it makes stored secrets
# unreadable: set the webhooks again). Batches of at most LEARNING_WEBHOOK_BATCH labels.
LEARNING_WEBHOOK_KEY = os.environ.get("OVERSIGHT_WEBHOOK_KEY", "")
LEARNING_WEBHOOK_BATCH = envint("LEARNING_WEBHOOK_BATCH", 100)
LEARNING_WEBHOOK_TIMEOUT = envfloat("LEARNING_WEBHOOK_TIMEOUT", 10.0)
# Webhook URLs must be https in production unless this is on.
LEARNING_WEBHOOK_ALLOW_HTTP = envbool("LEARNING_WEBHOOK_ALLOW_HTTP", DEBUG)
# Random-audit labels whose draw lies in the lower part of the audit rate are the holdout.
LEARNING_HOLDOUT_FRACTION = envfloat("LEARNING_HOLDOUT_FRACTION", 0.5)
# The promotion gate: a candidate may lose at most this much accuracy / ROC AUC against the
# champion, and widen a group gap (FNR, FPR, selection rate) by at most this much; groups
# with fewer than LEARNING_MIN_GROUP_COUNT rows (positives for FNR, negatives for FPR) on
# the holdout are reported as too small.
LEARNING_GATE_TOLERANCE = envfloat("LEARNING_GATE_TOLERANCE", 0.01)
LEARNING_GATE_GAP_TOLERANCE = envfloat("LEARNING_GATE_GAP_TOLERANCE", 0.02)
LEARNING_MIN_GROUP_COUNT = envint("LEARNING_MIN_GROUP_COUNT", 30)
# A retraining run still "running" after this long lost its worker: it is marked failed.
LEARNING_RETRAIN_TIMEOUT_SECONDS = envint("LEARNING_RETRAIN_TIMEOUT_SECONDS", 3600)


def email_settings(url: str) -> dict:
    """EMAIL_URL, e.g. smtp://user:pass@mail.example.org:587?tls=1, smtps://…, console://
    (the default: messages are printed), locmem:// (kept in memory, for tests)."""
    parts = urlsplit(url)
    backends = {
        "console": "django.core.mail.backends.console.EmailBackend",
        "locmem": "django.core.mail.backends.locmem.EmailBackend",
        "smtp": "django.core.mail.backends.smtp.EmailBackend",
        "smtps": "django.core.mail.backends.smtp.EmailBackend",
    }
    if parts.scheme not in backends:
        raise ImproperlyConfigured(
            f"EMAIL_URL={url!r}: the scheme must be one of {', '.join(backends)}"
        )
    query = dict(parse_qsl(parts.query))
    return {
        "EMAIL_BACKEND": backends[parts.scheme],
        "EMAIL_HOST": parts.hostname or "localhost",
        "EMAIL_PORT": parts.port or (465 if parts.scheme == "smtps" else 25),
        "EMAIL_HOST_USER": unquote(parts.username or ""),
        "EMAIL_HOST_PASSWORD": unquote(parts.password or ""),
        "EMAIL_USE_SSL": parts.scheme == "smtps",
        "EMAIL_USE_TLS": query.get("tls", "") in _TRUE,
        "EMAIL_TIMEOUT": int(query.get("timeout", 10)),
    }


globals().update(email_settings(os.environ.get("EMAIL_URL") or "console://"))
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL") or "Oversight <oversight@localhost>"
EMAIL_DOMAIN = os.environ.get("EMAIL_DOMAIN") or "oversight.local"

# Background jobs (exports, verifications) beat their heart while they run; one whose heart
# has not beaten for this long (its worker was killed) is taken back by the sweep and re-run.
JOB_STALE_SECONDS = envint("JOB_STALE_SECONDS", 300)
JOB_HEARTBEAT_SECONDS = envint("JOB_HEARTBEAT_SECONDS", 20)

# The review queue.
REVIEW_LEASE_MINUTES = envint("REVIEW_LEASE_MINUTES", 15)
REVIEW_REASON_CODES = envlist(
    "REVIEW_REASON_CODES", "model_error,missing_information,policy_exception,other"
)
# What a reason code means to the person the decision is about (their notice quotes it when
# the reviewer wrote them no explanation); reviews.presentation.PUBLIC_REASONS has the
# defaults, and a code without wording gets the general sentence.
REVIEW_REASON_PUBLIC_WORDING: dict[str, str] = {}
# What a reason code means to reviewers and auditors (reviews.presentation.REASON_LABELS has
# the defaults; a code without a label is shown as its name in words).
REVIEW_REASON_LABELS: dict[str, str] = {}
# Automation bias: agrees with the model at least this often AND takes at most this fraction
# of the median time of other reviewers, over at least this many reviews.
AUTOMATION_BIAS_AGREE_RATE = envfloat("AUTOMATION_BIAS_AGREE_RATE", 0.95)
AUTOMATION_BIAS_SPEED_RATIO = envfloat("AUTOMATION_BIAS_SPEED_RATIO", 0.5)
AUTOMATION_BIAS_MIN_REVIEWS = envint("AUTOMATION_BIAS_MIN_REVIEWS", 20)
# Reviewer statistics show Cohen's kappa as a number only over at least this many
# double-reviewed decisions ("too few" below it, with the count).
KAPPA_MIN_PAIRS = envint("KAPPA_MIN_PAIRS", 10)

# Group reports (oversight): groups with fewer reviewed decisions than REPORT_MIN_CELL are
# reported as suppressed, without rates (their counts only to auditors).
REPORT_MIN_CELL = envint("REPORT_MIN_CELL", 10)
# Alerts, evaluated per model by beat (ALERT_EVALUATE_SECONDS) and on demand, over the last
# ALERT_WINDOW_DAYS: a group difference in override rate with a Holm-adjusted p below ALERT_P
# and an absolute difference of at least ALERT_MIN_DIFF; a final-outcome selection-rate ratio
# below ALERT_FOUR_FIFTHS; a random-audit override rate whose 95 % interval lies above
# ALERT_RANDOM_AUDIT_OVERRIDE (which also trips the review-all breaker).
ALERT_WINDOW_DAYS = envint("ALERT_WINDOW_DAYS", 90)
ALERT_P = envfloat("ALERT_P", 0.05)
ALERT_MIN_DIFF = envfloat("ALERT_MIN_DIFF", 0.1)
ALERT_FOUR_FIFTHS = envfloat("ALERT_FOUR_FIFTHS", 0.8)
ALERT_RANDOM_AUDIT_OVERRIDE = envfloat("ALERT_RANDOM_AUDIT_OVERRIDE", 0.2)
# Drift: the PSI of each feature and of the score over the last DRIFT_WINDOW_DAYS against the
# version's drift baseline, once at least DRIFT_MIN_DECISIONS decisions are in the window (by
# chance alone, n decisions in ten bins give a PSI near 9/n, so small windows are not judged).
# An alert above DRIFT_PSI_ALERT; above DRIFT_PSI_TRIP the review-all breaker trips.
DRIFT_WINDOW_DAYS = envint("DRIFT_WINDOW_DAYS", 7)
DRIFT_MIN_DECISIONS = envint("DRIFT_MIN_DECISIONS", 300)
DRIFT_PSI_ALERT = envfloat("DRIFT_PSI_ALERT", 0.15)
DRIFT_PSI_TRIP = envfloat("DRIFT_PSI_TRIP", 0.25)
# Appeals and the affected person's portal (/my-decision/). An appeal is answered within
# APPEAL_SLA_DAYS; an access code works for APPEAL_ACCESS_CODE_DAYS. Signing in: after
# PORTAL_LOCKOUT_FAILURES failures a reference is locked for PORTAL_LOCKOUT_MINUTES, twice as
# long after each further lockout; one client address may try PORTAL_RATE_LIMIT times per
# PORTAL_RATE_WINDOW_MINUTES. Behind proxies, PORTAL_TRUSTED_PROXY_HOPS says how many
# X-Forwarded-For entries (from the right) were added by proxies of ours. A portal session
# ends after PORTAL_IDLE_MINUTES without a request.
APPEAL_SLA_DAYS = envint("APPEAL_SLA_DAYS", 14)
APPEAL_ACCESS_CODE_DAYS = envint("APPEAL_ACCESS_CODE_DAYS", 365)
# Appeal attachments: outside static files, shared by the web processes in production.
APPEAL_FILES_DIR = Path(os.environ.get("OVERSIGHT_APPEAL_FILES_DIR", DATA_DIR / "appeal-files"))
PORTAL_LOCKOUT_FAILURES = envint("PORTAL_LOCKOUT_FAILURES", 5)
PORTAL_LOCKOUT_MINUTES = envint("PORTAL_LOCKOUT_MINUTES", 15)
PORTAL_RATE_LIMIT = envint("PORTAL_RATE_LIMIT", 20)
PORTAL_RATE_WINDOW_MINUTES = envint("PORTAL_RATE_WINDOW_MINUTES", 10)
PORTAL_TRUSTED_PROXY_HOPS = envint("PORTAL_TRUSTED_PROXY_HOPS", 0)
PORTAL_IDLE_MINUTES = envint("PORTAL_IDLE_MINUTES", 30)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
