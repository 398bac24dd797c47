"""The sandbox's provider facts (sandbox/facts.py) against the console's catalogue (integrations/catalog.py).

Both sides are written from ../shared/docs/provider-api-facts.md, separately: the sandbox never reads the
catalogue, so a wrong quota (auth type, token lifetime, ...) in either shows up here as a difference, named in
the failure message. Decide from the facts document which side is wrong, and fix that side.
"""

import dataclasses
from datetime import timedelta

import pytest

from integrations import catalog
from sandbox import facts

# Facts that both sides must state. Any other field the two sides share by name is compared too, so a fact
# the catalogue gains later is checked without changing this test.
REQUIRED = (
    "name",
    "category",
    "auth_type",
    "quota",
    "window_seconds",
    "supports_webhooks",
    "status_page",
    "token_ttl",
    "base_url",
)
# A sandbox fact the catalogue states under another name.
ALIASES = {"token_ttl": "token_seconds"}
# Facts one side may leave unstated (None), and which are then not compared, with the side that may:
#   the catalogue states a token lifetime only where the token answer carries no expires_in (Salesforce);
#   the sandbox states no base URL where every customer has a host of its own (Workday).
MAY_BE_UNSTATED = {"token_ttl": "catalog", "base_url": "sandbox"}


def _sandbox_names() -> set[str]:
    names = {f.name for f in dataclasses.fields(facts.ProviderFacts)} - {"slug", "webhook_signing"}
    return names | {"supports_webhooks"}


def _catalog_names() -> set[str]:
    info = catalog.ProviderInfo
    fields = {f.name for f in dataclasses.fields(info)} if dataclasses.is_dataclass(info) else set()
    return fields | {
        n for n in vars(info) if not n.startswith("_") and isinstance(getattr(info, n), property)
    }


def compared_facts() -> dict[str, str]:
    """sandbox fact name -> the catalogue's name for it, for every fact both sides state."""
    catalog_names = _catalog_names()
    pairs = {}
    for name in sorted(_sandbox_names()):
        other = ALIASES.get(name, name)
        if other in catalog_names:
            pairs[name] = other
    return pairs


def _normalise(value):
    if isinstance(value, timedelta):
        return int(value.total_seconds())
    if isinstance(value, str):
        return value.rstrip("/")
    return value


def differences(sandbox_facts=None, catalogue=None) -> list[str]:
    """One line per difference: a provider only one side knows, or a fact the two sides state differently."""
    sandbox_facts = facts.PROVIDER_FACTS if sandbox_facts is None else sandbox_facts
    catalogue = catalog.PROVIDERS if catalogue is None else catalogue
    out = [f"{slug}: only in sandbox/facts.py" for slug in sorted(set(sandbox_facts) - set(catalogue))]
    out += [
        f"{slug}: only in integrations/catalog.py" for slug in sorted(set(catalogue) - set(sandbox_facts))
    ]
    for slug in [s for s in sandbox_facts if s in catalogue]:
        for name, other in compared_facts().items():
            ours, theirs = getattr(sandbox_facts[slug], name), getattr(catalogue[slug], other)
            side = MAY_BE_UNSTATED.get(name)
            if side and {"sandbox": ours, "catalog": theirs}[side] is None:
                continue
            if _normalise(ours) != _normalise(theirs):
                label = name if name == other else f"{name} (catalog: {other})"
                out.append(f"{slug}.{label}: sandbox {ours!r}, catalog {theirs!r}")
    return out


def test_sandbox_facts_match_the_catalogue():
    found = differences()
    assert not found, (
        "sandbox/facts.py and integrations/catalog.py disagree; decide from ../shared/docs/provider-api-facts.md "
        "which side is wrong:\n  " + "\n  ".join(found)
    )


def test_the_comparison_covers_quotas_auth_and_webhooks():
    missing = [name for name in REQUIRED if name not in compared_facts()]
    assert not missing, f"no longer stated by both sides, so no longer compared: {', '.join(missing)}"


def test_a_wrong_catalogue_entry_is_named():
    wrong = dict(catalog.PROVIDERS)
    wrong["hubspot"] = dataclasses.replace(wrong["hubspot"], quota=1000, auth_type="api_key")
    wrong["salesforce"] = dataclasses.replace(wrong["salesforce"], token_seconds=3600)
    del wrong["clearbit"]
    assert differences(catalogue=wrong) == [
        "clearbit: only in sandbox/facts.py",
        "hubspot.auth_type: sandbox 'oauth2', catalog 'api_key'",
        "hubspot.quota: sandbox 100, catalog 1000",
        "salesforce.token_ttl (catalog: token_seconds): sandbox 7200, catalog 3600",
    ]


def test_a_fact_one_side_may_leave_unstated_is_compared_only_when_stated():
    wrong = dict(catalog.PROVIDERS)
    wrong["hubspot"] = dataclasses.replace(wrong["hubspot"], token_seconds=None)  # expires_in decides
    wrong["lever"] = dataclasses.replace(wrong["lever"], token_seconds=60)
    wrong["workday"] = dataclasses.replace(
        wrong["workday"], base_url="https://example.invalid"
    )  # per customer
    assert differences(catalogue=wrong) == [
        "lever.token_ttl (catalog: token_seconds): sandbox 3600, catalog 60"
    ]


@pytest.mark.parametrize("slug", sorted(facts.PROVIDER_FACTS))
def test_facts_are_coherent(slug):
    f = facts.PROVIDER_FACTS[slug]
    assert f.slug == slug
    assert f.auth_type in ("oauth2", "api_key") and f.category in ("crm", "ats", "docs", "enrichment")
    assert f.quota > 0 and f.window_seconds > 0
    assert (f.token_ttl is not None) == (f.auth_type == "oauth2"), (
        "access tokens live only for oauth2 providers"
    )
    assert f.status_page.startswith("https://")
    assert f.base_url is None or f.base_url.startswith("https://")


@pytest.mark.parametrize("slug", sorted(facts.PROVIDER_FACTS))
def test_each_provider_server_follows_its_facts(slug):
    from sandbox.providers import PROVIDER_CLASSES, OAuthProvider, Provider

    f, cls = facts.PROVIDER_FACTS[slug], PROVIDER_CLASSES[slug]
    assert issubclass(cls, OAuthProvider) == (f.auth_type == "oauth2"), "a token endpoint only for oauth2"
    signs = cls.webhook_deliveries is not Provider.webhook_deliveries
    assert signs == f.supports_webhooks, f"{slug} facts say webhook_signing={f.webhook_signing!r}"
