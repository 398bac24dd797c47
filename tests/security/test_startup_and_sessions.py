"""Issue 13, M2 (start-up refuses unsafe settings), M5 (login throttling, idle timeout), CSP, /metrics."""

import os
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.urls import reverse

from integrations.models import AuditEvent
from tests.support import factories

PROD = {
    "DJANGO_ENV": "production",
    "SECRET_KEY": "x" * 60 + "-unique-production-secret-key-for-tests",
    "FERNET_KEYS": Fernet.generate_key().decode(),
    "ALLOWED_HOSTS": "ops.example.com",
    "PROVIDER_WEBHOOK_SECRET": "whsec-production",
    "PROVIDER_CLIENT_SECRET": "client-secret",
}
NAMES = {*PROD, "DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE"}


def manage(*args, env):
    base = {k: v for k, v in os.environ.items() if k not in NAMES}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def shell(code: str, env) -> subprocess.CompletedProcess:
    return manage("shell", "-c", code, env=env)


@pytest.mark.parametrize("value", [",", " , ", ""])
def test_m2_fernet_keys_without_a_key_do_not_start(value):
    result = manage("check", env={**PROD, "FERNET_KEYS": value})
    assert result.returncode != 0 and "FERNET_KEYS" in result.stderr


def test_m2_a_malformed_fernet_key_stops_start_up_naming_it():
    good = Fernet.generate_key().decode()
    result = manage("check", env={**PROD, "FERNET_KEYS": f"{good},not-a-key"})
    assert result.returncode != 0 and "FERNET_KEYS key #2" in result.stderr


def test_m2_debug_is_refused_outside_development():
    for env in ({**PROD, "DEBUG": "true"}, {"DJANGO_ENV": "test", "DEBUG": "true"}):
        result = manage("check", env=env)
        assert (
            result.returncode != 0
            and "DEBUG=true is allowed only with DJANGO_ENV=development" in result.stderr
        )


def test_m2_unset_django_env_means_debug_off():
    result = shell("from django.conf import settings; print('DEBUG', settings.DEBUG)", env={})
    assert result.returncode == 0, result.stderr
    assert "DEBUG False" in result.stdout


def test_m2_development_keys_are_refused_when_debug_is_off_on_a_reachable_host():
    result = manage("check", env={"ALLOWED_HOSTS": "ops.example.com"})
    assert result.returncode != 0 and "SECRET_KEY holds the public development value" in result.stderr
    result = manage(
        "check", env={**PROD, "SECRET_KEY": "dev-only-insecure-secret-key-do-not-use-in-production"}
    )
    assert result.returncode != 0 and "SECRET_KEY holds the public development value" in result.stderr


def test_production_with_the_readme_settings_passes_check_deploy_at_warning_level():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=PROD)
    assert result.returncode == 0, result.stderr + result.stdout


@pytest.mark.django_db
def test_m5_wrong_passwords_lock_the_login_out_and_are_audited(client, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    factories.user("admin", superuser=True)
    url = reverse("admin:login")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(url, {"username": "admin", "password": "wrong"})
    # The right password now: still locked out.
    answer = client.post(url, {"username": "admin", "password": factories.PASSWORD})
    assert answer.status_code in (403, 429)
    assert "_auth_user_id" not in client.session
    failed = AuditEvent.objects.filter(action="auth.login_failed")
    assert failed.count() >= settings.AXES_FAILURE_LIMIT
    assert failed.first().details["username"] == "admin" and "wrong" not in str(failed.first().details)
    assert AuditEvent.objects.filter(action="auth.locked_out").exists()


@pytest.mark.django_db
def test_m5_sessions_expire_when_idle_and_each_request_renews_them(client, superuser):
    assert settings.SESSION_SAVE_EVERY_REQUEST and 0 < settings.SESSION_COOKIE_AGE <= 3600
    from datetime import timedelta

    from django.contrib.sessions.models import Session
    from django.utils import timezone

    client.force_login(superuser)
    assert client.get(reverse("admin:index")).status_code == 200
    session = Session.objects.get(session_key=client.session.session_key)
    assert session.expire_date > timezone.now() + timedelta(seconds=settings.SESSION_COOKIE_AGE - 60)
    # Idle for longer than the timeout: the next request is sent to the login page.
    Session.objects.filter(pk=session.pk).update(expire_date=timezone.now() - timedelta(seconds=1))
    assert client.get(reverse("admin:index")).status_code == 302


@pytest.mark.django_db
def test_pages_carry_a_content_security_policy(client, superuser):
    client.force_login(superuser)
    policy = client.get(reverse("admin:index"))["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy


@pytest.mark.django_db
def test_metrics_are_closed_by_default_and_the_token_is_required(client, settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_PUBLIC = False
    assert client.get("/metrics").status_code == 403
    settings.METRICS_TOKEN = "scrape-me"
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-mf").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-me").status_code == 200
