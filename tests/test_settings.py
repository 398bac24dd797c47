"""Production refuses to start without its secrets, and passes Django's deployment checks."""

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


def manage(*args, env):
    base = {k: v for k, v in os.environ.items() if k not in PROD and k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_names_each_missing_variable():
    for name in ["SECRET_KEY", "FERNET_KEYS", "ALLOWED_HOSTS"]:
        env = {k: v for k, v in PROD.items() if k != name}
        result = manage("check", env=env)
        assert result.returncode != 0
        assert f"{name} must be set when DJANGO_ENV=production" in result.stderr


def test_production_passes_check_deploy():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=PROD)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "no issues" in result.stdout
