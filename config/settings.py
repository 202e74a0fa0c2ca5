"""Mediastore settings, all read from the environment.

With nothing set, the service runs embedded: SQLite and files under `./var/`, Celery on a
file-based broker. Every name is listed in README.md and `.env.example`. A bad value stops
start-up with `ImproperlyConfigured` naming the variable.
"""
from __future__ import annotations

import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.env import Env
from config.http_client import parse_networks
from config.logs import logging_config
from config.s3 import s3_storage_options

env = Env()

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env.str("MEDIASTORE_VAR_DIR", str(BASE_DIR / "var"))).resolve()


def _secret_key() -> str:
    """SECRET_KEY, or one generated once into var/ so every process of one install agrees."""
    value = env.str("SECRET_KEY", aliases=("DJANGO_SECRET_KEY",))
    if value:
        return value
    path = VAR_DIR / "secret_key"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env.bool("DEBUG")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's and Redoc's files, served from /static/ (no CDN)
    "storages",
    "accounts",
    "quotas",
    "storage_app",
    "media_app",
    "events",
    "config",
    "backoffice",
    "web",  # the web app for people (templates/, static/)
]

MIDDLEWARE = [
    "config.middleware.RequestIdMiddleware",
    "config.telemetry.RequestTelemetryMiddleware",  # request metrics and the access log line
    "config.middleware.PrimaryPinMiddleware",
    "config.middleware.UploadSlotsMiddleware",
    "config.ratelimit.RateLimitMiddleware",  # anonymous callers per address; RateLimit-* headers
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",  # /static/: the admin's and /docs' files
    "django.contrib.sessions.middleware.SessionMiddleware",
    "config.middleware.CommonMiddleware",  # `/admin` -> `/admin/` for web pages, never API paths
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "config.middleware.ApiErrorMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
# Web pages only (config.middleware.CommonMiddleware, and the admin's own catch-all): `/admin` -> `/admin/`.
APPEND_SLASH = True
# With APPEND_SLASH, Django warns about routes that begin with a slash: the Media API's are exact
# on purpose ("v1/media" + "/upload"), and API paths are never redirected.
SILENCED_SYSTEM_CHECKS = ["urls.W002"]

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
            ],
        },
    },
]

# --- Databases -------------------------------------------------------------------------
_SQLITE_OPTIONS = {
    # WAL and IMMEDIATE transactions let the web server, worker and beat share one file.
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    "transaction_mode": "IMMEDIATE",
    "timeout": 20,
}


def _database(url: str, name: str) -> dict:
    try:
        config = dj_database_url.parse(url, conn_max_age=env.int("DATABASE_CONN_MAX_AGE", 60))
    except Exception as exc:  # dj-database-url raises several types for a bad URL
        raise ImproperlyConfigured(f"{name}={url!r} is not a database URL: {exc}") from None
    if config["ENGINE"] == "django.db.backends.sqlite3":
        config["ENGINE"] = "config.sqlite"  # Django's, with a process's threads queuing for writes (config/sqlite)
        config["OPTIONS"] = {**_SQLITE_OPTIONS, **config.get("OPTIONS", {})}
        # Kept like PostgreSQL's (DATABASE_CONN_MAX_AGE): opening one per request cost a quarter of a small
        # upload's CPU on the embedded default (docs/benchmarks.md, row 12).
        # Tests: an in-memory database, as Django gives its own SQLite engine (pytest-django knows that
        # engine by name, and would otherwise name a file `test_<path>` per xdist worker).
        config["TEST"] = {"NAME": ":memory:", **config.get("TEST", {})}
    elif config["ENGINE"] == "django.db.backends.postgresql":
        # Server-side binding lets psycopg prepare a statement after its fifth run on a connection, so
        # PostgreSQL stops parsing and planning the hot paths' few statements on every request
        # (docs/benchmarks.md, rows 8 and 12). Off for a pooler in transaction mode (PgBouncer < 1.21),
        # where a prepared statement may not be on the next transaction's server connection.
        # Django leaves psycopg's prepare_threshold off unless OPTIONS name it.
        prepared = env.bool("DATABASE_SERVER_SIDE_BINDING", True)
        config["OPTIONS"] = {"server_side_binding": prepared, "prepare_threshold": 5 if prepared else None,
                             **config.get("OPTIONS", {})}
    return config


_default_db_url = env.str("DATABASE_URL", aliases=("DB_POSTGRESQL_WRITE_DSN",))
DATABASES = {
    "default": _database(_default_db_url or f"sqlite:///{VAR_DIR / 'db.sqlite3'}", "DATABASE_URL"),
}
_replica_url = env.str("DATABASE_REPLICA_URL", aliases=("DB_POSTGRESQL_READ1_DSN",))
if _replica_url:
    DATABASES["replica"] = _database(_replica_url, "DATABASE_REPLICA_URL")
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
    DATABASE_ROUTERS = ["config.db_router.PrimaryReplicaRouter"]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth, i18n, static ----------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]  # the web app's plain CSS and JS (no build step)
# WhiteNoise serves /static/ from STATIC_ROOT (collectstatic, as the image does) and, before
# any collectstatic (`make run`), straight from the apps' static folders. It warns at start-up
# when STATIC_ROOT does not exist, so an empty one is made (var/ is writable by design).
WHITENOISE_USE_FINDERS = True
try:
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)
except OSError:  # a read-only var/: WhiteNoise warns, and serves from the apps all the same
    pass

# --- Media storage ---------------------------------------------------------------------
_r2_configured = bool(env.str("R2_ENDPOINT_URL") and env.str("R2_ACCESS_KEY_ID"))
# local, s3, or the dotted path of a MediaStore subclass (storage_app/backends/__init__.py).
MEDIA_STORAGE_BACKEND = env.choice("MEDIA_STORAGE_BACKEND", ("local", "s3"), "s3" if _r2_configured else "local",
                                   or_dotted_path=True)
MEDIA_S3_BUCKET = env.str("MEDIA_S3_BUCKET", aliases=("R2_BUCKET_NAME", "R2_BUCKET"))
MEDIA_S3_REGION = env.str("MEDIA_S3_REGION", "us-east-1", aliases=("R2_REGION",))
MEDIA_S3_ENDPOINT = env.str("MEDIA_S3_ENDPOINT", aliases=("R2_ENDPOINT_URL",))
MEDIA_S3_ACCESS_KEY_ID = env.str("MEDIA_S3_ACCESS_KEY_ID", aliases=("R2_ACCESS_KEY_ID",))
MEDIA_S3_SECRET_ACCESS_KEY = env.str("MEDIA_S3_SECRET_ACCESS_KEY", aliases=("R2_SECRET_ACCESS_KEY",))
MEDIA_S3_USE_PATH_STYLE = env.bool("MEDIA_S3_USE_PATH_STYLE", False)
MEDIA_S3_PUBLIC_ENDPOINT = env.str("MEDIA_S3_PUBLIC_ENDPOINT", aliases=("R2_PUBLIC_URL",)).rstrip("/")
MEDIA_S3_PRESIGN_TTL = env.duration("MEDIA_S3_PRESIGN_TTL", "168h")
# The S3 endpoint as clients reach it, for presigned URLs; defaults to MEDIA_S3_ENDPOINT.
MEDIA_S3_PRESIGN_ENDPOINT = env.str("MEDIA_S3_PRESIGN_ENDPOINT").rstrip("/")
MEDIA_LOCAL_STORAGE_PATH = Path(env.str("MEDIA_LOCAL_STORAGE_PATH", str(VAR_DIR / "media"))).resolve()
# By default the address `serve` (make run) listens on, so a changed MEDIASTORE_BIND keeps signed URLs working
# (a wildcard address is reached as 127.0.0.1; behind a proxy or in Compose, set the public URL).
_BIND_HOST, _, _BIND_PORT = env.str("MEDIASTORE_BIND", "127.0.0.1:8000").rpartition(":")
_BIND_HOST = "127.0.0.1" if _BIND_HOST in ("", "0.0.0.0", "[::]") else _BIND_HOST
MEDIA_LOCAL_STORAGE_BASE_URL = env.str(
    "MEDIA_LOCAL_STORAGE_BASE_URL", f"http://{_BIND_HOST}:{_BIND_PORT or 8000}/files").rstrip("/")
MEDIA_PROXY_DOWNLOAD = env.bool("MEDIA_PROXY_DOWNLOAD", False)
# Behind nginx: an internal location that serves MEDIA_LOCAL_STORAGE_PATH (README, Performance).
MEDIA_ACCEL_REDIRECT_PREFIX = env.str("MEDIA_ACCEL_REDIRECT_PREFIX")
MEDIA_ENCRYPTION = env.choice("MEDIA_ENCRYPTION", ("none", "app", "sse"), "none")
MEDIA_MASTER_KEYS = env.str("MEDIA_MASTER_KEYS")
# Where `make run` keeps a generated local master key when MEDIA_MASTER_KEYS is not set.
MEDIA_MASTER_KEYS_FILE = Path(env.str("MEDIA_MASTER_KEYS_FILE", str(VAR_DIR / "master-keys"))).resolve()
if MEDIA_ENCRYPTION == "app" and not MEDIA_MASTER_KEYS and MEDIA_MASTER_KEYS_FILE.exists():
    MEDIA_MASTER_KEYS = MEDIA_MASTER_KEYS_FILE.read_text().strip()
if MEDIA_ENCRYPTION == "app" and not MEDIA_MASTER_KEYS:
    raise ImproperlyConfigured(
        "MEDIA_ENCRYPTION=app needs MEDIA_MASTER_KEYS (id:base64key[,id:base64key...]); "
        "`python manage.py create_master_key` makes one.")
# MEDIA_MASTER_KEYS itself is parsed by the storage layer as it starts (storage_app/apps.py).

if MEDIA_STORAGE_BACKEND == "s3" and not MEDIA_S3_BUCKET:
    raise ImproperlyConfigured("MEDIA_S3_BUCKET must be set when MEDIA_STORAGE_BACKEND=s3.")
if MEDIA_ENCRYPTION == "sse" and MEDIA_STORAGE_BACKEND != "s3":
    raise ImproperlyConfigured("MEDIA_ENCRYPTION=sse needs MEDIA_STORAGE_BACKEND=s3.")


def _media_storage() -> dict:
    """Django's storage for the backend; a backend named by dotted path gets the local one (to use or ignore)."""
    if MEDIA_STORAGE_BACKEND != "s3":
        return {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(MEDIA_LOCAL_STORAGE_PATH), "base_url": MEDIA_LOCAL_STORAGE_BASE_URL + "/"},
        }
    return {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": s3_storage_options(
            bucket=MEDIA_S3_BUCKET, region=MEDIA_S3_REGION, endpoint=MEDIA_S3_ENDPOINT,
            access_key=MEDIA_S3_ACCESS_KEY_ID, secret_key=MEDIA_S3_SECRET_ACCESS_KEY,
            path_style=MEDIA_S3_USE_PATH_STYLE, presign_ttl=int(MEDIA_S3_PRESIGN_TTL),
        ),
    }


STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage",
                "OPTIONS": {"location": str(VAR_DIR / "default-storage")}},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "media": _media_storage(),
}

# --- Media limits and behaviour ---------------------------------------------------------
MEDIA_MAX_BYTES = env.bytes("MEDIA_MAX_BYTES", 20 * 1024 * 1024)
MEDIA_RETENTION_DAYS = env.int("MEDIA_RETENTION_DAYS", 30, minimum=1)
MEDIA_REMOTE_FETCH_TIMEOUT = env.duration("MEDIA_REMOTE_FETCH_TIMEOUT", "15s")
MEDIA_REMOTE_FETCH_ALLOW_NETWORKS = env.list("MEDIA_REMOTE_FETCH_ALLOW_NETWORKS")
MEDIA_ID_PREFIX = env.str("MEDIA_ID_PREFIX", "med_")
MEDIA_DEDUP_SCOPE = env.choice("MEDIA_DEDUP_SCOPE", ("owner", "organization", "off"), "owner")
MEDIA_UPLOAD_TTL = env.duration("MEDIA_UPLOAD_TTL", "1h")
# POST /v1/media/resolve with a payload: the largest request body it walks, and the most bytes of
# files it inlines as base64 (`"as": "data_url"`) in one answer. Both answer 413 above.
MEDIA_RESOLVE_MAX_PAYLOAD_BYTES = env.bytes("MEDIA_RESOLVE_MAX_PAYLOAD_BYTES", 4 * 1024 * 1024)
MEDIA_RESOLVE_INLINE_MAX_BYTES = env.bytes("MEDIA_RESOLVE_INLINE_MAX_BYTES", 20 * 1024 * 1024)
MEDIA_SOURCE_DELETE_DELAY = env.duration("MEDIA_SOURCE_DELETE_DELAY", "1h")
MEDIA_PURGE_GRACE = env.duration("MEDIA_PURGE_GRACE", "0")
# Objects younger than this are never called stray by reconcile_storage (an upload may be mid-way).
MEDIA_RECONCILE_GRACE = env.duration("MEDIA_RECONCILE_GRACE", "1h")
# Whether the scheduled reconcile_storage deletes stray objects (the command's --fix). Off by
# default: after restoring an older database backup, every newer object would look stray.
MEDIA_RECONCILE_FIX = env.bool("MEDIA_RECONCILE_FIX", False)
# A JSON body may carry a base64 data URL of a file at the size limit, even wrapped in lines of
# 64 characters (PEM; MIME's are 76) whose "\r\n" JSON escapes as 4 characters, and 1 MiB of
# other fields.
_DATA_URL_CHARS = -(-MEDIA_MAX_BYTES // 3) * 4
DATA_UPLOAD_MAX_MEMORY_SIZE = _DATA_URL_CHARS + _DATA_URL_CHARS // 64 * 4 + 1024 * 1024
# Slow request bodies (config/bodyguard.py; README "Limits"): a body read that receives nothing for
# the idle timeout fails, and after the grace period the body must arrive at the minimum rate (bytes
# per second, on average since the request began). Either answers 408. 0 turns a limit off.
# Image variants (media_app/derivatives.py): the only sizes rendered (others round up to the next),
# the largest source decoded, and renders at once per process (each holds a decoded image).
MEDIA_TRANSFORM_WIDTHS = env.int_list("MEDIA_TRANSFORM_WIDTHS", (64, 128, 256, 512, 1024, 2048))
MEDIA_TRANSFORM_MAX_PIXELS = env.int("MEDIA_TRANSFORM_MAX_PIXELS", 50_000_000, minimum=1)
MEDIA_TRANSFORM_CONCURRENCY = env.int("MEDIA_TRANSFORM_CONCURRENCY", 2, minimum=1)
MEDIA_BODY_IDLE_TIMEOUT = env.duration("MEDIA_BODY_IDLE_TIMEOUT", "30s")
MEDIA_BODY_MIN_RATE = env.int("MEDIA_BODY_MIN_RATE", 1024)
MEDIA_BODY_GRACE = env.duration("MEDIA_BODY_GRACE", "10s")
# Uploads in progress at once (config/concurrency.py): per organization on authenticated routes, per
# client address on signed-URL ones; 429 past it. Per gunicorn worker unless REDIS_URL is set. 0: no limit.
MEDIA_CONCURRENT_UPLOADS_PER_ORG = env.int("MEDIA_CONCURRENT_UPLOADS_PER_ORG", 8)
MEDIA_CONCURRENT_UPLOADS_PER_IP = env.int("MEDIA_CONCURRENT_UPLOADS_PER_IP", 8)
# Requests per minute (config/ratelimit.py): per API key and per organization as the plan says
# (Plan.requests_per_minute, Plan.organization_requests_per_minute), per client address for callers
# without credentials (signed URLs among them). Counted in Redis when REDIS_URL is set. 0: no limit.
RATE_LIMITS_ENABLED = env.bool("RATE_LIMITS_ENABLED", True)
RATE_LIMIT_ANONYMOUS_PER_MINUTE = env.int("RATE_LIMIT_ANONYMOUS_PER_MINUTE", 600)

# --- Webhooks (events/) -------------------------------------------------------------------
# Target URLs must resolve to public addresses, or to these CIDRs (default: the remote fetcher's).
WEBHOOK_ALLOW_NETWORKS = env.list("WEBHOOK_ALLOW_NETWORKS", MEDIA_REMOTE_FETCH_ALLOW_NETWORKS)
try:
    parse_networks(WEBHOOK_ALLOW_NETWORKS)
except ValueError as _exc:
    raise ImproperlyConfigured(f"WEBHOOK_ALLOW_NETWORKS: {_exc}") from None
WEBHOOK_TIMEOUT = env.duration("WEBHOOK_TIMEOUT", "10s")  # one delivery attempt, connect to answer
WEBHOOK_MAX_ATTEMPTS = env.int("WEBHOOK_MAX_ATTEMPTS", 8, minimum=1)
WEBHOOK_RETRY_BASE = env.duration("WEBHOOK_RETRY_BASE", "30s")  # before the 2nd attempt; doubling after
WEBHOOK_RETRY_MAX = env.duration("WEBHOOK_RETRY_MAX", "6h")
if WEBHOOK_TIMEOUT <= 0:
    raise ImproperlyConfigured("WEBHOOK_TIMEOUT must be greater than zero.")
# Browser origins allowed to call the resumable uploads (tus) at /v1/uploads/ (CORS), e.g.
# "https://app.example.com,https://admin.example.com"; "*" allows any. Empty: no CORS headers.
MEDIA_CORS_ALLOWED_ORIGINS = env.list("MEDIA_CORS_ALLOWED_ORIGINS")
# The web app's upload page (web/): when the storage backend takes direct uploads (S3 without app
# encryption), files of at least WEB_DIRECT_UPLOAD_MIN_BYTES go from the browser straight to the bucket
# through a presigned upload, then are completed; from WEB_MULTIPART_MIN_BYTES on, as a multipart upload
# (each part sent and retried on its own). Smaller files, and every file on other backends, go through
# POST /v1/media/upload. The bucket must let the site PUT and read ETag: manage.py configure_bucket_cors.
WEB_DIRECT_UPLOAD_MIN_BYTES = env.bytes("WEB_DIRECT_UPLOAD_MIN_BYTES", 8 * 1024 * 1024)
WEB_MULTIPART_MIN_BYTES = env.bytes("WEB_MULTIPART_MIN_BYTES", 64 * 1024 * 1024)

# --- Celery ----------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL")
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", REDIS_URL)
CELERY_BROKER_DIR = VAR_DIR / "celery"
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", False)
# Beat's schedule: each entry's interval is overridable as MEDIASTORE_SCHEDULE_<NAME> (a duration).
_SCHEDULE_DEFAULTS = {
    "heartbeat": ("media_app.tasks.heartbeat", "60s"),
    # The lifecycle jobs (media_app/lifecycle.py; README "Background jobs").
    "expire_media": ("media_app.tasks.expire_media", "15m"),
    "purge_media": ("media_app.tasks.purge_media", "15m"),
    "cleanup_sources": ("media_app.tasks.cleanup_sources", "5m"),
    "expire_uploads": ("media_app.tasks.expire_uploads", "10m"),
    "recalculate_quotas": ("media_app.tasks.recalculate_quotas", "6h"),
    "reconcile_storage": ("media_app.tasks.reconcile_storage", "24h"),
}
CELERY_BEAT_SCHEDULE = {
    name: {"task": task, "schedule": env.duration(f"MEDIASTORE_SCHEDULE_{name.upper()}", default)}
    for name, (task, default) in _SCHEDULE_DEFAULTS.items()
}

# --- API -------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiKeyAuthentication",
        "accounts.oidc.OIDCBearerAuthentication",  # a no-op unless OIDC_ENABLED
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "config.parsers.JSONParser",
        "rest_framework.parsers.MultiPartParser",
        "rest_framework.parsers.FormParser",
    ],
    "EXCEPTION_HANDLER": "config.exception_handler.api_exception_handler",
    # Requests per minute per API key and organization, from the plan (config/ratelimit.py).
    "DEFAULT_THROTTLE_CLASSES": ["accounts.throttles.RateLimits"],
    "DEFAULT_SCHEMA_CLASS": "config.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
API_KEY_LAST_USED_RESOLUTION = 60  # seconds; avoids a write on every request
# How long a process may reuse an authenticated API key without reading it again (accounts/keycache.py);
# revoking a key, disabling its user or changing a role still takes effect within a second. 0: no cache.
API_KEY_CACHE_SECONDS = env.duration("API_KEY_CACHE_SECONDS", "5s")

# /api/schema (OpenAPI 3) and /docs (Swagger UI); config/openapi.py adds what views share.
SPECTACULAR_SETTINGS = {
    "TITLE": "Mediastore API",
    "VERSION": "1.0.0",
    "DESCRIPTION": (
        "Storage for the media AI applications generate and their users upload.\n\n"
        "Surfaces: the Media API (`/v1/media`), the Storage API (`/api/v1/storage`), compute image "
        "storage (`/api/v1/storage/images`, service keys only), app-signed file URLs (`/files/{key}`) "
        "and health checks.\n\n"
        "Authenticate with an API key (`Authorization: Bearer msk_...` or `X-API-Key: msk_...`) or, "
        "when OIDC is configured, an access token from the provider (`Authorization: Bearer <JWT>`).\n\n"
        "Every error answers `{\"error\": {\"message\", \"type\", \"code\", \"param\"?}}`."
    ),
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_AUTHENTICATION": [],
    "DEFAULT_GENERATOR_CLASS": "config.openapi.SchemaGenerator",
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "MediaStatusEnum": "media_app.models.MediaFile.Status",
        "CategoryEnum": "api.media.schema.CATEGORY_VALUES",
        "FileCategoryEnum": "media_app.models.MediaFile.Category",  # the Storage API's (labelled) choices
        "MediaObjectEnum": ["media"],
        "ListObjectEnum": ["list"],
        "UploadObjectEnum": ["upload"],
        "PendingStatusEnum": ["pending"],
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.openapi.add_plain_views",
        "config.openapi.add_error_responses",
    ],
    "TAGS": [
        {"name": "media", "description": "The Media API: upload, presigned uploads, resolve, list, content."},
        {"name": "storage", "description": "The Storage API: files, buckets, objects, usage and quota."},
        {"name": "images", "description": "Compute image storage under `compute/` (service keys only)."},
        {"name": "files", "description": "App-signed URLs (local backend, app-encrypted objects)."},
        {"name": "webhooks", "description": "Signed event deliveries to the organization's URLs (owners and admins)."},
        {"name": "operations", "description": "Liveness and readiness."},
    ],
}

# --- OIDC ------------------------------------------------------------------------------
# Bearer JWTs from an OpenID Connect provider, verified locally against its JWKS
# (accounts/oidc.py); optionally the admin's browser login through mozilla-django-oidc.
OIDC_ISSUER = env.str("OIDC_ISSUER", aliases=("AUTH_ISSUER",))  # compared exactly with `iss`
OIDC_ENABLED = env.bool("OIDC_ENABLED", bool(OIDC_ISSUER), aliases=("AUTH_ENABLED",))
OIDC_JWKS_URL = env.str("OIDC_JWKS_URL", aliases=("AUTH_JWKS_URL", "OIDC_OP_JWKS_ENDPOINT"))
OIDC_AUDIENCE = env.list("OIDC_AUDIENCE", aliases=("ACCOUNT",))  # a token's `aud` must name one
_OIDC_ASYMMETRIC = {name.upper(): name for name in (
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")}
OIDC_ALGORITHMS = []
for _alg in env.list("OIDC_ALGORITHMS", ["RS256", "ES256"]):
    if _alg.upper() not in _OIDC_ASYMMETRIC:  # `none` and HS* are never accepted
        raise ImproperlyConfigured(
            f"OIDC_ALGORITHMS: {_alg!r} is not allowed (use asymmetric ones: {', '.join(_OIDC_ASYMMETRIC.values())}).")
    OIDC_ALGORITHMS.append(_OIDC_ASYMMETRIC[_alg.upper()])
OIDC_LEEWAY = env.duration("OIDC_LEEWAY", "30s")
OIDC_TIMEOUT = env.duration("OIDC_TIMEOUT", "5s")  # also used by mozilla-django-oidc's calls
OIDC_JWKS_CACHE_TTL = env.duration("OIDC_JWKS_CACHE_TTL", "1h")
OIDC_JWKS_MIN_REFRESH_INTERVAL = env.duration("OIDC_JWKS_MIN_REFRESH_INTERVAL", "30s")  # for unknown kids
OIDC_VERIFY_SSL = env.bool("OIDC_VERIFY_SSL", True)
OIDC_USERNAME_CLAIM = env.str("OIDC_USERNAME_CLAIM", "preferred_username")
OIDC_ORG_CLAIM = env.str("OIDC_ORG_CLAIM")  # empty: tokens act in the user's personal organization
OIDC_ORG_AUTO_CREATE = env.bool("OIDC_ORG_AUTO_CREATE", False)
if OIDC_TIMEOUT <= 0:
    raise ImproperlyConfigured("OIDC_TIMEOUT must be greater than zero.")
if OIDC_ENABLED:
    for _name, _value in (("OIDC_ISSUER", OIDC_ISSUER), ("OIDC_JWKS_URL", OIDC_JWKS_URL),
                          ("OIDC_AUDIENCE", OIDC_AUDIENCE), ("OIDC_ALGORITHMS", OIDC_ALGORITHMS)):
        if not _value:
            raise ImproperlyConfigured(f"{_name} must be set when OIDC_ENABLED is true.")
if OIDC_JWKS_URL and not OIDC_JWKS_URL.lower().startswith(("http://", "https://")):
    raise ImproperlyConfigured("OIDC_JWKS_URL must be an http(s) URL.")
# The admin's browser login (authorization code flow), in mozilla-django-oidc's own names;
# on when OIDC_RP_CLIENT_ID is set. Username + password admin login keeps working.
OIDC_RP_CLIENT_ID = env.str("OIDC_RP_CLIENT_ID")
OIDC_RP_CLIENT_SECRET = env.str("OIDC_RP_CLIENT_SECRET")
OIDC_OP_AUTHORIZATION_ENDPOINT = env.str("OIDC_OP_AUTHORIZATION_ENDPOINT")
OIDC_OP_TOKEN_ENDPOINT = env.str("OIDC_OP_TOKEN_ENDPOINT")
OIDC_OP_USER_ENDPOINT = env.str("OIDC_OP_USER_ENDPOINT")
OIDC_OP_JWKS_ENDPOINT = OIDC_JWKS_URL
OIDC_RP_SIGN_ALGO = env.str("OIDC_RP_SIGN_ALGO", "RS256")
OIDC_RP_SCOPES = env.str("OIDC_RP_SCOPES", "openid email profile")
OIDC_LOGIN_ENABLED = bool(OIDC_RP_CLIENT_ID)
if OIDC_LOGIN_ENABLED:
    for _name in ("OIDC_RP_CLIENT_SECRET", "OIDC_OP_AUTHORIZATION_ENDPOINT", "OIDC_OP_TOKEN_ENDPOINT",
                  "OIDC_OP_USER_ENDPOINT"):
        if not globals()[_name]:
            raise ImproperlyConfigured(f"{_name} must be set when OIDC_RP_CLIENT_ID is set.")
    if OIDC_RP_SIGN_ALGO.lower() == "none":
        raise ImproperlyConfigured("OIDC_RP_SIGN_ALGO=none is not allowed.")
    if OIDC_RP_SIGN_ALGO.startswith(("RS", "ES", "PS")) and not OIDC_JWKS_URL:
        raise ImproperlyConfigured(f"OIDC_JWKS_URL must be set when OIDC_RP_SIGN_ALGO={OIDC_RP_SIGN_ALGO}.")
    INSTALLED_APPS.append("mozilla_django_oidc")
    AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend", "accounts.oidc.OIDCAdminBackend"]
    LOGIN_REDIRECT_URL = env.str("OIDC_LOGIN_REDIRECT_URL", "/admin/")
# --- end OIDC --------------------------------------------------------------------------

# --- Logging ---------------------------------------------------------------------------
# plain: one human line per record; json: one JSON object per line (config/logs.py), web, worker and beat.
LOG_LEVEL = env.choice("LOG_LEVEL", ("debug", "info", "warning", "error"), "info").upper()
LOG_FORMAT = env.choice("LOG_FORMAT", ("plain", "json"), "plain")
LOGGING = logging_config(level=LOG_LEVEL, fmt=LOG_FORMAT)

# --- Metrics ---------------------------------------------------------------------------
# /metrics (Prometheus text): answered to a bearer METRICS_TOKEN or to clients in METRICS_ALLOW_NETWORKS;
# with neither set it answers 404. PROMETHEUS_MULTIPROC_DIR (read by prometheus_client itself) adds
# up every gunicorn and Celery process.
PROMETHEUS_MULTIPROC_DIR = env.str("PROMETHEUS_MULTIPROC_DIR")
if PROMETHEUS_MULTIPROC_DIR:  # prometheus_client writes there from the first metric on
    Path(PROMETHEUS_MULTIPROC_DIR).mkdir(parents=True, exist_ok=True)
METRICS_TOKEN = env.str("METRICS_TOKEN")
METRICS_ALLOW_NETWORKS = env.list("METRICS_ALLOW_NETWORKS")
try:
    parse_networks(METRICS_ALLOW_NETWORKS)
except ValueError as _exc:
    raise ImproperlyConfigured(f"METRICS_ALLOW_NETWORKS: {_exc}") from None
