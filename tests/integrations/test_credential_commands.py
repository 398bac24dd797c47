"""refresh_tokens, rotate_credentials and check_token: effect, --dry-run changes nothing, bad input exits 2."""

import json
import subprocess
import sys
from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command

from integrations.access import crypto
from integrations.management.cli import os_user
from integrations.models import AuditEvent, Integration
from tests.support.credentials import raw_credentials
from tests.support.sync import connect

CLI_ACTOR = f"system:cli:{os_user()}"  # issue 13: commands name the OS user

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def usage_error(*args) -> str:
    with pytest.raises(CommandError) as info:
        run(*args)
    assert info.value.returncode == 2
    message = str(info.value)
    assert "\n" not in message
    return message


def test_refresh_tokens_refreshes_every_integration_of_the_provider(sandbox):
    a, b = connect(sandbox, "hubspot"), connect(sandbox, "hubspot")
    other = connect(sandbox, "lever")
    sandbox.control("hubspot", expire_tokens=True)
    out = run("refresh_tokens", "--provider", "hubspot")
    assert "Refreshed 2 hubspot integration(s); needs re-authorization: 0, failed: 0." in out
    for i in (a, b):
        fresh = Integration.objects.get(pk=i.pk)
        assert fresh.last_refreshed_at and fresh.credentials["access_token"] != i.credentials["access_token"]
    assert Integration.objects.get(pk=other.pk).credentials == other.credentials
    events = AuditEvent.objects.filter(action="integration.reconnect")
    assert {(e.actor, e.details["source"]) for e in events} == {(CLI_ACTOR, "refresh_tokens")}


def test_refresh_tokens_for_one_tenant_reports_needs_reauth(sandbox):
    a, b = connect(sandbox, "lever"), connect(sandbox, "lever")
    sandbox.control("lever", revoke_refresh_tokens=True)
    out = run("refresh_tokens", "--provider", "lever", "--tenant", a.tenant.slug)
    assert "Refreshed 0 lever integration(s); needs re-authorization: 1" in out
    assert Integration.objects.get(pk=a.pk).status == "needs_reauth"
    assert Integration.objects.get(pk=b.pk).status == "connected"


def test_refresh_tokens_dry_run_changes_nothing(sandbox):
    a = connect(sandbox, "hubspot")
    out = run("refresh_tokens", "--provider", "hubspot", "--dry-run")
    assert f"would refresh integration {a.pk}" in out and "nothing changed" in out
    assert Integration.objects.get(pk=a.pk).credentials == a.credentials
    assert not AuditEvent.objects.exists() and sandbox.requests("hubspot") == []


def test_refresh_tokens_dry_run_does_not_promise_a_refresh_the_provider_already_refused(sandbox):
    a, b = connect(sandbox, "hubspot"), connect(sandbox, "hubspot")
    sandbox.control("hubspot", revoke_refresh_tokens=True)
    run("refresh_tokens", "--provider", "hubspot", "--tenant", a.tenant.slug)
    assert Integration.objects.get(pk=a.pk).status == "needs_reauth"
    out = run("refresh_tokens", "--provider", "hubspot", "--dry-run")
    line = next(row for row in out.splitlines() if f"integration {a.pk} " in row)
    assert not line.startswith("would refresh") and "needs re-authorization" in line, line
    assert f"would refresh integration {b.pk}" in out


def test_refresh_tokens_bad_input_exits_2_and_changes_nothing(sandbox):
    connect(sandbox, "hubspot")
    assert "unknown provider 'hubspto'" in usage_error("refresh_tokens", "--provider", "hubspto")
    assert "uses API keys" in usage_error("refresh_tokens", "--provider", "greenhouse")
    assert "no hubspot integration for tenant 'nobody'" in usage_error(
        "refresh_tokens", "--provider", "hubspot", "--tenant", "nobody"
    )
    assert not AuditEvent.objects.exists()


def test_rotate_credentials_store_in_vault_reencrypts_with_the_new_key(sandbox, settings):
    a, b = connect(sandbox, "hubspot"), connect(sandbox, "hubspot")
    settings.FERNET_KEYS = [Fernet.generate_key().decode(), settings.FERNET_KEYS[0]]
    out = run("rotate_credentials", "--provider", "hubspot", "--store-in-vault")
    assert "Rotated hubspot: refreshed 2, re-encrypted 2, failed 0 (of 2)." in out
    assert crypto.is_current(raw_credentials(a)) and crypto.is_current(raw_credentials(b))
    assert (
        AuditEvent.objects.filter(
            action="integration.rotate_credentials", actor=CLI_ACTOR, details__source="rotate_credentials"
        ).count()
        == 2
    )


def test_rotate_credentials_dry_run_changes_nothing(sandbox, settings):
    a = connect(sandbox, "greenhouse")
    settings.FERNET_KEYS = [Fernet.generate_key().decode(), settings.FERNET_KEYS[0]]
    before = raw_credentials(a)
    out = run("rotate_credentials", "--provider", "greenhouse", "--store-in-vault", "--dry-run")
    assert "would re-encrypt 1" in out and "nothing changed" in out
    assert raw_credentials(a) == before and not AuditEvent.objects.exists()


def test_rotate_credentials_unknown_provider_exits_2():
    assert "unknown provider" in usage_error("rotate_credentials", "--provider", "nope", "--store-in-vault")


def test_check_token_prints_lines_and_json(sandbox):
    a = connect(sandbox, "hubspot")
    out = run("check_token", "hubspot")
    assert f"{a.tenant.slug}: connected, expires in" in out and "refresh token stored" in out
    assert "hubspot: 1 integration(s), 0 expired" in out
    report = json.loads(run("check_token", "hubspot", "--json"))
    assert report["summary"]["total"] == 1 and report["integrations"][0]["integration_id"] == a.pk
    assert a.credentials["access_token"] not in out + json.dumps(report)


def test_check_token_unknown_provider_exits_2_with_one_line():
    """The runbook's shell usage: a typo must say so on one line with exit status 2."""
    done = subprocess.run(
        [sys.executable, "manage.py", "check_token", "nope"],
        cwd=django_settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "UsageError: unknown provider 'nope' (known: hubspot, salesforce, "
        "greenhouse, lever, workday, pandadoc, clearbit)"
    ]
