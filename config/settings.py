"""Django settings, read from the environment (see README "Configuration").

Zero-setup default: SQLite in ``var/db.sqlite3`` and Celery tasks run eagerly in-process. Production:
``DATABASE_URL=postgres://...``, ``CELERY_BROKER_URL=redis://...``, ``DEBUG=0`` and ``SECRET_KEY``.
"""

from __future__ import annotations

import secrets
import sys
from datetime import timedelta
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from config.env import (
    env_bool,
    env_decimal,
    env_float,
    env_int,
    env_list,
    env_log_level,
    env_str,
    parse_database_url,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")) or BASE_DIR / "var")

TESTING = "pytest" in sys.modules or env_bool("TESTING", False)
DEBUG = env_bool("DEBUG", True)


def _secret_key() -> str:
    configured = env_str("SECRET_KEY")
    if configured:
        return configured
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set in the environment when DEBUG is off.")
    # Local use: a random key kept in var/ so sessions survive a restart of the dev server.
    key_file = VAR_DIR / "secret_key"
    if key_file.exists():
        return key_file.read_text().strip()
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    key_file.write_text(key)
    key_file.chmod(0o600)
    return key


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    # Before django.contrib.auth: its audited changepassword and createsuperuser commands win the names.
    "workforce",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "qualification",
    "tasks",
]

MIDDLEWARE = [
    "workforce.request_context.RequestIdMiddleware",
    # /healthz and /readyz answer here, before the Host check and the HTTPS redirect (config/health.py).
    "config.health.HealthCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "workforce.security.ContentSecurityPolicyMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "config" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": parse_database_url(
        env_str("DATABASE_URL", "sqlite:///var/db.sqlite3") or "sqlite:///var/db.sqlite3", base_dir=BASE_DIR
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
IS_POSTGRES = DATABASES["default"]["ENGINE"].endswith("postgresql")
# The worker pool's hot statements are prepared once per connection (see tasks/services/hot_sql.py).
DB_PREPARED_STATEMENTS = env_bool("DB_PREPARED_STATEMENTS", True)

REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    {"NAME": "workforce.passwords.StaffPasswordValidator"},
]
STAFF_PASSWORD_MIN_LENGTH = env_int("STAFF_PASSWORD_MIN_LENGTH", 12)
# Rate limits (cache-based, per user name or user + client IP; see workforce/ratelimit.py).
LOGIN_MAX_FAILURES = env_int("LOGIN_MAX_FAILURES", 5)
LOGIN_LOCKOUT_SECONDS = env_int("LOGIN_LOCKOUT_SECONDS", 15 * 60)
# Behind a reverse proxy: the META key holding the client address it sets, e.g. HTTP_X_FORWARDED_FOR.
RATELIMIT_IP_HEADER = env_str("RATELIMIT_IP_HEADER", "") or ""
QUALIFICATION_RATE_LIMIT = env_int("QUALIFICATION_RATE_LIMIT", 20)
QUALIFICATION_RATE_WINDOW_SECONDS = env_int("QUALIFICATION_RATE_WINDOW_SECONDS", 60)
# Posts to the MTurk ExternalQuestion page (no login there): at most this many per client address per window.
MTURK_PAGE_RATE_LIMIT = env_int("MTURK_PAGE_RATE_LIMIT", 30)
MTURK_PAGE_RATE_WINDOW_SECONDS = env_int("MTURK_PAGE_RATE_WINDOW_SECONDS", 60)
if TESTING:
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

AUTHENTICATION_BACKENDS = ["workforce.auth.WorkerAwareBackend"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")) or BASE_DIR / "staticfiles")
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")) or VAR_DIR / "media")
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 10 * 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024  # larger uploads are spooled to a temporary file
DATA_UPLOAD_MAX_NUMBER_FILES = 5
# Item imports through the admin or the API (CSV/JSONL); the command line has no limit.
IMPORT_MAX_UPLOAD_BYTES = env_int("IMPORT_MAX_UPLOAD_BYTES", 100 * 1024 * 1024)

# --- security: sane defaults when DEBUG is off (python manage.py check --deploy) -----------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 60 * 60 * 24 * 30)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
    CSRF_COOKIE_HTTPONLY = env_bool("CSRF_COOKIE_HTTPONLY", True)  # the pages read the token from the form
    if not SECURE_HSTS_PRELOAD:
        # Preloading is a deliberate, hard-to-undo choice per domain (SECURE_HSTS_PRELOAD=1 opts in).
        SILENCED_SYSTEM_CHECKS = ["security.W021"]
# Scripts only from our own static files; inline styles allowed (progress bars). Item images and
# qualification audio/video come from wherever an import points (the README: "http(s), a data:image/… URI
# or a site path"), so img-src and media-src allow http: as well as https: (a browser on an https page
# upgrades such loads to https itself, or blocks them as mixed content).
_MEDIA_SOURCES = "'self' https: http: data:"
CONTENT_SECURITY_POLICY = env_str(
    "CONTENT_SECURITY_POLICY",
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    f"img-src {_MEDIA_SOURCES}; media-src {_MEDIA_SOURCES}; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
)
# A stale CSRF token (a page left open across a sign-in): JSON for the labeling page's script, else a page.
CSRF_FAILURE_VIEW = "tasks.views.csrf_failure"

# --- Django REST framework -----------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # DRF's default parsers, with JSON nested too deeply to read a 400 instead of a 500 (workforce.parsers).
    "DEFAULT_PARSER_CLASSES": [
        "workforce.parsers.SafeJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "tasks.api.pagination.BoundedCursorPagination",
    "PAGE_SIZE": 100,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
# OpenAPI 3 schema at /api/schema/, Swagger UI at /api/docs/ (assets served locally, no CDN).
SPECTACULAR_SETTINGS = {
    "TITLE": "crowdops API",
    "DESCRIPTION": "Jobs, items, assignments, consensus labels, worker scores, costs and dataset versions.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema and docs are for staff, like the API itself: crowd workers and anonymous callers get no map.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAdminUser"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "ExportFormatEnum": "tasks.services.exports.registry.KNOWN_FORMATS",
        "ImportFormatEnum": "tasks.services.imports.FORMATS",
    },
    # The API's ``<id:...>`` path converter (tasks.api.converters): integers a 64-bit column holds.
    "PATH_CONVERTER_OVERRIDES": {"id": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}},
}

# --- Celery ------------------------------------------------------------------------------------
# No broker configured: tasks run eagerly in-process (zero-setup default).
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or None
CELERY_TASK_ALWAYS_EAGER = CELERY_BROKER_URL is None
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND") or None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE = {
    "expire-leases": {
        "task": "tasks.tasks.expire_leases_task",
        "schedule": timedelta(seconds=env_int("LEASE_SWEEP_SECONDS", 30)),
    },
    "refresh-speed-scores": {
        "task": "tasks.tasks.refresh_speed_scores_task",
        "schedule": timedelta(seconds=env_int("SCORE_REFRESH_SECONDS", 300)),
    },
    "auto-review": {
        "task": "tasks.tasks.auto_review_task",
        "schedule": timedelta(seconds=env_int("AUTO_REVIEW_SECONDS", 300)),
    },
    "seal-audit-events": {
        "task": "workforce.tasks.seal_audit_events_task",
        "schedule": timedelta(seconds=env_int("AUDIT_SEAL_SECONDS", 5)),
    },
    "expire-test-attempts": {
        "task": "qualification.tasks.expire_overdue_attempts_task",
        "schedule": timedelta(minutes=1),
    },
    # Adaptive redundancy: re-fit worker skills as answers grow, run allocation passes the debounce held back.
    "adaptive-sweep": {
        "task": "tasks.adaptive_tasks.sweep_adaptive_jobs_task",
        "schedule": timedelta(seconds=env_int("ADAPTIVE_SWEEP_SECONDS", 60)),
    },
    # Exports no worker picked up (asked for while the broker was down, or their message was lost) go again.
    "requeue-stale-exports": {
        "task": "tasks.tasks.requeue_stale_exports_task",
        "schedule": timedelta(seconds=env_int("EXPORT_SWEEP_SECONDS", 120)),
    },
}
# An export still queued this long after it was asked for is queued again by the sweep above.
EXPORT_REQUEUE_AFTER_SECONDS = env_int("EXPORT_REQUEUE_AFTER_SECONDS", 300)
# A running export that showed no life this long (no rows written: its worker died) is queued again by the
# sweep, at most 3 runs in all, then failed. Generous: a run writes its progress at least every chunk.
EXPORT_STALLED_AFTER_SECONDS = env_int("EXPORT_STALLED_AFTER_SECONDS", 1800)
if EXPORT_STALLED_AFTER_SECONDS < 60:
    raise ImproperlyConfigured(
        f"EXPORT_STALLED_AFTER_SECONDS must be at least 60 (a slow but live export must not be run twice), "
        f"got {EXPORT_STALLED_AFTER_SECONDS}."
    )
# /readyz: how long the broker check may take.
READYZ_BROKER_TIMEOUT_SECONDS = env_float("READYZ_BROKER_TIMEOUT_SECONDS", 2.0)
# At most one adaptive allocation pass per job is queued in this many seconds (the rest wait, none is lost).
ADAPTIVE_ALLOCATION_DEBOUNCE_SECONDS = env_int("ADAPTIVE_ALLOCATION_DEBOUNCE_SECONDS", 5)

# --- Amazon Mechanical Turk (README "Amazon Mechanical Turk") -------------------------------------
# Credentials come from boto3's default chain only (AWS_ACCESS_KEY_ID/..., AWS_PROFILE, a role).
MTURK_ENABLED = env_bool("MTURK_ENABLED", False)
MTURK_SANDBOX = env_bool("MTURK_SANDBOX", True)
MTURK_ENDPOINT_URL = env_str("MTURK_ENDPOINT_URL", "") or ""  # a local stand-in; empty: AWS
MTURK_REQUESTS_PER_SECOND = env_float("MTURK_REQUESTS_PER_SECOND", 5.0)
MTURK_REQUEST_BURST = env_int("MTURK_REQUEST_BURST", 10)
MTURK_MAX_ATTEMPTS = env_int("MTURK_MAX_ATTEMPTS", 5)
MTURK_RATE_LIMIT_REDIS_URL = env_str("MTURK_RATE_LIMIT_REDIS_URL", REDIS_URL or "") or ""
MTURK_EXTERNAL_QUESTION_BASE_URL = env_str("MTURK_EXTERNAL_QUESTION_BASE_URL", "") or ""
MTURK_AUTO_APPROVAL_DELAY = timedelta(hours=env_int("MTURK_AUTO_APPROVAL_HOURS", 72))
MTURK_HIT_LIFETIME = timedelta(hours=env_int("MTURK_HIT_LIFETIME_HOURS", 24 * 7))
MTURK_REVIEW_MARGIN = timedelta(hours=env_int("MTURK_REVIEW_MARGIN_HOURS", 24))
MTURK_SQS_QUEUE_URL = env_str("MTURK_SQS_QUEUE_URL", "") or ""
# A Hit claimed for publishing longer ago than this is taken again (its publisher is presumed dead).
MTURK_PUBLISH_STALE_SECONDS = env_int("MTURK_PUBLISH_STALE_SECONDS", 120)
if MTURK_ENABLED:
    CELERY_BEAT_SCHEDULE |= {
        "mturk-publish-pending": {
            "task": "tasks.mturk_tasks.publish_pending_mturk_hits_task",
            "schedule": timedelta(minutes=1),
        },
        "mturk-collect": {"task": "tasks.mturk_tasks.collect_mturk_work_task", "schedule": timedelta(minutes=5)},
        "mturk-notifications": {
            "task": "tasks.mturk_tasks.consume_mturk_notifications_task",
            "schedule": timedelta(seconds=30),
        },
        "mturk-review-guard": {
            "task": "tasks.mturk_tasks.guard_mturk_auto_approval_task",
            "schedule": timedelta(minutes=15),
        },
        "mturk-bonus-retry": {
            "task": "tasks.mturk_tasks.retry_pending_mturk_bonuses_task",
            "schedule": timedelta(minutes=5),
        },
        "mturk-reconcile": {"task": "tasks.mturk_tasks.reconcile_mturk_hits_task", "schedule": timedelta(hours=1)},
        "mturk-housekeeping": {"task": "tasks.mturk_tasks.delete_done_mturk_hits_task", "schedule": timedelta(days=1)},
    }

# --- the product -------------------------------------------------------------------------------
# How many items an import may report as bad before it stops listing them.
IMPORT_MAX_REPORTED_ERRORS = env_int("IMPORT_MAX_REPORTED_ERRORS", 50)

# --- finance -------------------------------------------------------------------------------------
# Who gets the 50/80/100% budget alerts by email (comma-separated; empty: admin banner and audit only).
FINANCE_ALERT_EMAILS = env_list("FINANCE_ALERT_EMAILS", [])
# The fair-pay minimum: effective hourly pay a job's median worker should reach (empty: no check).
FAIR_PAY_MIN_HOURLY = env_decimal("FAIR_PAY_MIN_HOURLY")  # a Decimal, or None: no fair-pay minimum
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "crowdops@localhost")

# Each line carries the id of the request it was logged in (the X-Request-ID response header), "-" outside one.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "workforce.request_logging.RequestIdFilter"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s [%(request_id)s] %(name)s %(message)s"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["request_id"]},
    },
    "root": {"handlers": ["console"], "level": env_log_level("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- SageMaker Ground Truth (see README "SageMaker Ground Truth") ------------------------------
GROUNDTRUTH_ENABLED = env_bool("GROUNDTRUTH_ENABLED", False)
GROUNDTRUTH_ROLE_ARN = env_str("GROUNDTRUTH_ROLE_ARN", "") or ""
GROUNDTRUTH_S3_BUCKET = env_str("GROUNDTRUTH_S3_BUCKET", "") or ""
GROUNDTRUTH_S3_PREFIX = env_str("GROUNDTRUTH_S3_PREFIX", "crowdops") or ""
GROUNDTRUTH_REGION = env_str("GROUNDTRUTH_REGION", "") or ""
# Service charge per labeled object (USD): (objects up to, price); None = every further object.
GROUNDTRUTH_OBJECT_PRICE_TIERS: list[tuple[int | None, str]] = [(50_000, "0.08"), (1_000_000, "0.04"), (None, "0.02")]
CELERY_BEAT_SCHEDULE["follow-labeling-jobs"] = {
    "task": "tasks.tasks.follow_labeling_jobs_task",
    "schedule": timedelta(seconds=env_int("GROUNDTRUTH_FOLLOW_SECONDS", 300)),
}
