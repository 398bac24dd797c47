"""Production settings from the environment (issue 16): plain-HTTP internal clients are not redirected while
check --deploy stays clean; the proxy header, mail and the visibility timeout come from the environment."""

import json
import os
import subprocess
import sys

from cryptography.fernet import Fernet
from django.conf import settings

PROD = {
    "DJANGO_ENV": "production",
    "SECRET_KEY": "x" * 60 + "-unique-production-secret-key-for-tests",
    "FERNET_KEYS": Fernet.generate_key().decode(),
    "ALLOWED_HOSTS": "ops.example.com",
    "PROVIDER_WEBHOOK_SECRET": "whsec",
    "PROVIDER_CLIENT_SECRET": "client-secret",
}

PROBE = """
import django, json
django.setup()
from django.conf import settings as s
from django.test import Client
c = Client(raise_request_exception=False)
codes = {p: c.get(p).status_code for p in ["/admin/login/", "/metrics", "/api/v1/integrations/status"]}
codes["POST /webhooks/hubspot/acme/"] = c.post("/webhooks/hubspot/acme/", data="{}", content_type="application/json").status_code
codes["POST /api/v1/alerts"] = c.post("/api/v1/alerts", data="{}", content_type="application/json").status_code
print(json.dumps({"codes": codes, "proxy": s.SECURE_PROXY_SSL_HEADER, "email": s.EMAIL_BACKEND, "host": s.EMAIL_HOST,
                  "port": s.EMAIL_PORT, "vt": s.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"],
                  "limit": s.CELERY_TASK_TIME_LIMIT, "console": s.CONSOLE_URL}))
"""


def probe(**env):
    base = {k: v for k, v in os.environ.items() if k not in PROD and k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        env={
            **base,
            **PROD,
            "ALLOWED_HOSTS": "testserver",
            "DJANGO_SETTINGS_MODULE": "lineup_ops.settings",
            **env,
        },
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def test_plain_http_reaches_metrics_webhooks_and_alerts_but_the_console_is_redirected():
    out, _ = probe()
    codes = out["codes"]
    assert codes["/admin/login/"] == 301 and codes["/api/v1/integrations/status"] == 301
    for exempt in ["/metrics", "POST /webhooks/hubspot/acme/", "POST /api/v1/alerts"]:
        assert codes[exempt] != 301, (exempt, codes)


def test_the_exemptions_and_the_proxy_header_come_from_the_environment():
    out, _ = probe(SECURE_REDIRECT_EXEMPT="", SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_SCHEME,https")
    assert out["codes"]["/metrics"] == 301
    assert out["proxy"] == ["HTTP_X_FORWARDED_SCHEME", "https"]
    out, _ = probe(SECURE_PROXY_SSL_HEADER="")
    assert out["proxy"] is None


def test_mail_console_url_and_visibility_timeout_from_the_environment():
    out, _ = probe()
    assert out["email"] == "django.core.mail.backends.smtp.EmailBackend" and out["host"] == "localhost"
    assert out["console"] == "https://testserver"
    assert out["vt"] == out["limit"] + 60 == 360
    out, _ = probe(
        EMAIL_URL="smtp+tls://u:p@smtp.example.com:587",
        CELERY_TASK_TIME_LIMIT="600",
        CONSOLE_URL="https://ops.example.com/",
    )
    assert (out["host"], out["port"], out["vt"]) == ("smtp.example.com", 587, 660)
    assert out["console"] == "https://ops.example.com"


def test_a_visibility_timeout_not_above_the_time_limit_is_refused():
    base = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    done = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        env={**base, "CELERY_VISIBILITY_TIMEOUT": "300"},
    )
    assert done.returncode != 0
    assert "CELERY_VISIBILITY_TIMEOUT must be longer than CELERY_TASK_TIME_LIMIT" in done.stderr
