"""The wheel holds the whole console (issue 16: `pip install .` installed no code, the wheel held 0 files)."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from django.conf import settings

APPS = ["lineup_ops", "integrations", "incidents", "dashboard"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            str(settings.BASE_DIR),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (path,) = out.glob("lineup_ops-*.whl")
    with zipfile.ZipFile(path) as z:
        yield z


def tracked(prefix: str) -> list[str]:
    out = subprocess.run(["git", "ls-files", prefix], cwd=settings.BASE_DIR, capture_output=True, text=True)
    if out.returncode != 0:
        pytest.skip("not a git checkout")
    return [p for p in out.stdout.split() if (settings.BASE_DIR / p).exists()]


def test_every_file_of_every_app_is_in_the_wheel(wheel):
    names = set(wheel.namelist())
    sandbox = ["sandbox"] if (settings.BASE_DIR / "sandbox" / "__init__.py").exists() else []
    for app in APPS + sandbox:
        files = [f for f in tracked(app) if "__pycache__" not in f]
        assert files, app
        missing = [f for f in files if f not in names]
        assert not missing, f"{app}: not in the wheel: {missing[:10]}"


def test_the_wheel_holds_templates_migrations_static_runbooks_and_the_rule_file(wheel):
    names = set(wheel.namelist())
    for wanted in [
        "lineup_ops/templates/admin/base_site.html",
        "dashboard/templates/dashboard/home.html",
        "integrations/migrations/0001_initial.py",
        "incidents/migrations/0001_initial.py",
        "dashboard/static/dashboard/dashboard.css",
        "integrations/static/lineup/console.css",
        "incidents/runbooks/source/RB-09-integration-provider-outage.md",
        "incidents/runbooks/source/lineup-integration-runbooks.md",
        "lineup_ops/prometheus/lineup-alerts.yml",
        "lineup_ops/__main__.py",
    ]:
        assert wanted in names, wanted
    sandbox = [
        n for n in names if n.startswith(("sandbox/", "integrations/sandbox/")) and n.endswith("server.py")
    ]
    assert sandbox, "the sandbox provider is not in the wheel"
    shipped = (settings.BASE_DIR / "deploy" / "prometheus" / "lineup-alerts.yml").read_text()
    assert wheel.read("lineup_ops/prometheus/lineup-alerts.yml").decode() == shipped  # content, not a link
    assert not [n for n in names if n.startswith(("tests/", "bench/", "faults/"))]


def test_the_wheel_declares_the_lineup_ops_command(wheel):
    (entry_points,) = [n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt")]
    text = wheel.read(entry_points).decode()
    assert "[console_scripts]" in text and "lineup-ops = lineup_ops.__main__:main" in text


def test_the_rule_file_is_read_from_the_package_with_runbook_links_on_console_url():
    from lineup_ops.alert_rules import render_rules, shipped_rules

    assert "IDISIntegrationProviderErrors" in shipped_rules()
    rendered = render_rules("https://ops.example.com/")
    # Three alerts since issue 14: the fast and the slow burn of IDISIntegrationProviderErrors, and webhooks.
    assert rendered.count('runbook_url: "https://ops.example.com/runbooks/RB-09/"') == 3
    assert "127.0.0.1:8000" not in rendered


def test_lineup_ops_runs_as_a_module():
    done = subprocess.run(
        [sys.executable, "-m", "lineup_ops", "help", "connect_integration"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path("/"),
    )
    assert done.returncode == 0, done.stderr
    assert "--from-sandbox" in done.stdout
