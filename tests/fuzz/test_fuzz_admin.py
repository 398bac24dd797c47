"""Issue 13 (9): fuzzing the admin's changelist parameters and action forms, and every management command.

No 500 or traceback; a refused action or command changes no row; commands exit 0, 1 or 2 (never a traceback).
"""

import io

import pytest
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.management import call_command, get_commands
from django.core.management.base import CommandError
from django.urls import reverse
from hypothesis import given
from hypothesis import strategies as st

from tests.support import factories
from tests.support.fuzz import FUZZ, assert_no_crash, nasty, rows_snapshot, text_values

pytestmark = pytest.mark.django_db

CHANGELISTS = sorted(
    (m._meta.app_label, m._meta.model_name) for m in admin.site._registry if m._meta.app_label != "axes"
)
LOOKUPS = [
    "provider__exact",
    "status__exact",
    "window",
    "token",
    "tenant__id__exact",
    "poll_interval__gt",
    "expires_at__gte",
    "created_at__lt",
    "integration__id__in",
    "credentials__regex",
    "q",
    "o",
    "p",
    "e",
    "_facets",
    "all",
]
FORM_FIELDS = [
    "reason",
    "since",
    "poll_interval",
    "max_retries",
    "sample_size",
    "resolution",
    "error_category",
    "store_in_vault",
    "within",
    "defect_type",
    "mode",
]


@pytest.fixture
def world(db):
    tenant = factories.tenant(slug="acme")
    integration = factories.integration(tenant=tenant, provider="hubspot")
    factories.sync_log(integration=integration, status="FAILED", error_category="validation")
    factories.record(tenant=tenant)
    return {"integration": integration}


@FUZZ
@given(
    changelist=st.sampled_from(CHANGELISTS),
    params=st.dictionaries(
        st.sampled_from(LOOKUPS) | st.text(min_size=1, max_size=12), text_values, max_size=3
    ),
)
def test_changelist_parameters_never_answer_500(client, superuser, world, changelist, params):
    client.force_login(superuser)
    url = reverse(f"admin:{changelist[0]}_{changelist[1]}_changelist")
    response = client.get(url, params)
    assert_no_crash(response, f"{url} {params}")


def _actions():
    from django.test import RequestFactory

    request = RequestFactory().get("/")
    request.user = type("U", (), {"has_perm": lambda *a: True, "is_active": True, "is_staff": True})()
    out = []
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label not in ("integrations", "incidents"):
            continue
        for name in model_admin.actions or []:
            if isinstance(name, str):
                out.append((model._meta.app_label, model._meta.model_name, name))
    return sorted(out)


ACTIONS = _actions()


@FUZZ
@given(
    target=st.sampled_from(ACTIONS),
    selected=st.lists(st.one_of(st.integers(min_value=-3, max_value=2**70).map(str), nasty), max_size=3),
    fields=st.dictionaries(st.sampled_from(FORM_FIELDS), text_values, max_size=4),
    confirm=st.booleans(),
    select_across=st.sampled_from(["0", "1", "x"]),
)
def test_admin_action_forms_never_answer_500(
    client, superuser, world, target, selected, fields, confirm, select_across
):
    app, model, action = target
    client.force_login(superuser)
    url = reverse(f"admin:{app}_{model}_changelist")
    data = {
        "action": action,
        ACTION_CHECKBOX_NAME: selected,
        "index": "0",
        "select_across": select_across,
        **fields,
    }
    if confirm:
        data["confirm"] = "yes"
    before = rows_snapshot()
    response = client.post(url, data)
    assert_no_crash(response, f"{action} {data}")
    # A refusal is a form error (200 with errors) or a message and redirect: it must change nothing when the
    # selection held no real row.
    if (
        not any(s.isdigit() and int(s) < 10**6 for s in selected if isinstance(s, str))
        and select_across != "1"
    ):
        assert rows_snapshot() == before, f"{action} {data} changed rows with nothing selected"


COMMANDS = sorted(
    name
    for name, app in get_commands().items()
    if app in ("integrations", "incidents") and name not in ("run_demo", "run_sandbox", "seed_demo")
)
OPTIONS = [
    "--provider",
    "--since",
    "--tenant",
    "--within",
    "--mode",
    "--poll-interval",
    "--max-retries",
    "--sample-size",
    "--resolution",
    "--defect-type",
    "--actor",
    "--duration",
]


@FUZZ
@given(
    command=st.sampled_from(COMMANDS),
    options=st.dictionaries(
        st.sampled_from(OPTIONS), text_values.filter(lambda v: not v.startswith("-")), max_size=4
    ),
    flags=st.lists(
        st.sampled_from(["--dry-run", "--on", "--off", "--store-in-vault"]), max_size=2, unique=True
    ),
    provider=st.sampled_from(["hubspot", "greenhouse", "nope", ""]),
)
def test_every_management_command_exits_cleanly_on_bad_input(world, command, options, flags, provider):
    argv = [command, "--provider", provider] if provider else [command]
    for key, value in options.items():
        argv += [key, value]
    argv += flags
    before = rows_snapshot()
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(*argv, stdout=out, stderr=err)
    except CommandError as e:
        assert e.returncode in (1, 2), argv
        if not str(e).startswith("Error: "):  # argparse's own usage errors echo the argument as given
            assert "\n" not in str(e).strip(), f"{argv}: not one line: {e}"
        if e.returncode == 2:
            assert rows_snapshot() == before, f"{argv} refused but changed rows"
    except SystemExit as e:  # argparse: unknown option or missing argument
        assert e.code in (1, 2), argv
        assert rows_snapshot() == before
