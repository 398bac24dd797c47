"""Shared fixtures. Real services are used when present; with REQUIRE_SERVICES=1 a missing one fails the test."""

import os
import shutil

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop

import pytest
from django.conf import settings
from django.db import connection

from tests.support import factories
from tests.support.services import require_or_skip

pytest_plugins = ["tests.support.sandbox", "tests.support.clock"]

CHROMIUM = "/usr/bin/chromium"


def pytest_configure(config):
    """A fresh clone has neither var/ (SQLite test databases) nor test-artifacts/ (worker logs, screenshots)."""
    settings.VAR_DIR.mkdir(exist_ok=True)
    (settings.BASE_DIR / "test-artifacts").mkdir(exist_ok=True)


@pytest.fixture
def postgres():
    if connection.vendor != "postgresql":
        require_or_skip("this test needs PostgreSQL (set DATABASE_URL=postgres://...)")


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        require_or_skip("Debian's chromium is not installed (apt-get install -y chromium)")
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium"),
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ],
    }


@pytest.fixture
def artifacts_dir():
    path = settings.BASE_DIR / "test-artifacts"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture
def tenant(db):
    return factories.tenant()


@pytest.fixture
def operator(db):
    return factories.user("operator", group=factories.OPERATOR)


@pytest.fixture
def viewer(db):
    return factories.user("viewer", group=factories.VIEWER)


@pytest.fixture
def superuser(db):
    return factories.user("root", superuser=True)


@pytest.fixture(autouse=True)
def celery_eager(request):
    """Unit tests run tasks in-process; tests marked `worker` use a real worker and broker instead."""
    from lineup_ops.celery import app

    eager = "worker" not in request.keywords
    app.conf.task_always_eager = eager
    app.conf.task_eager_propagates = eager
    yield
    app.conf.task_always_eager = False


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """PBKDF2's cost protects real passwords; tests need none of it."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
