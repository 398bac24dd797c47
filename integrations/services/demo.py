"""Demo life: tenants edit records and providers change theirs, so the console shows live syncs (demo only)."""

import random

import requests
from django.conf import settings

from integrations.catalog import PROVIDERS
from integrations.engine.mapping import mapping_for
from integrations.models import Integration, Record
from integrations.services.syncs import records_changed

FIRST = ["Ada", "Grace", "Alan", "Barbara", "Ken", "Radia", "Donald", "Frances", "Edsger", "Margaret"]
LAST = [
    "Lovelace",
    "Hopper",
    "Turing",
    "Liskov",
    "Thompson",
    "Perlman",
    "Knuth",
    "Allen",
    "Dijkstra",
    "Hamilton",
]
TITLES = ["Engineer", "Recruiter", "Head of Talent", "VP Sales", "Account Executive", "Designer"]


def tick(rng: random.Random | None = None) -> dict:
    """One minute of demo activity: two local edits, one new local record, one change at a provider."""
    rng = rng or random.Random()
    done = {"local_edits": 0, "local_new": 0, "remote_changes": 0}
    integrations = list(
        Integration.objects.select_related("tenant").filter(enabled=True).exclude(provider="clearbit")
    )
    if not integrations:
        return done
    records = list(Record.objects.filter(tenant__in={i.tenant_id for i in integrations}).order_by("?")[:2])
    for record in records:
        record.payload = {**record.payload, "title": rng.choice(TITLES)}
        record.save(update_fields=["payload", "updated_at"])
        done["local_edits"] += 1
    target = rng.choice(integrations)
    first, last = rng.choice(FIRST), rng.choice(LAST)
    kind = PROVIDERS[target.provider].record_kind
    new = Record.objects.create(
        tenant=target.tenant,
        kind=kind,
        enrichment_status="PENDING" if kind == "claim" else "NONE",
        payload={
            "first_name": first,
            "last_name": last,
            "name": f"Offer letter {first} {last}",
            "email": f"{first}.{last}.{rng.randint(1000, 99999)}@example.com".lower(),
            "recipient_email": f"{first}.{last}@example.com".lower(),
            "title": rng.choice(TITLES),
        },
    )
    done["local_new"] = 1
    records_changed(record_ids=[r.pk for r in records] + [new.pk])
    done["remote_changes"] = _change_at_provider(rng.choice(integrations), rng)
    return done


def _change_at_provider(integration: Integration, rng: random.Random) -> int:
    """Someone edits a record in the provider's own UI: the sandbox sends a webhook, or the next poll finds it."""
    base = settings.SANDBOX_URL.rstrip("/")
    try:
        listing = requests.get(
            f"{base}/_control/{integration.provider}/records",
            params={"account": integration.tenant.slug},
            timeout=3,
        )
        listing.raise_for_status()
        remote = listing.json().get("records", [])
        if not remote:
            return 0
        chosen = rng.choice(remote)
        mapping = mapping_for(integration)
        local = next((f for f in ("title", "company", "name") if mapping.remote_name(f)), None)
        if local is None:
            return 0
        value = rng.choice(TITLES) if local != "name" else f"Contract {rng.randint(100, 999)}"
        fields = {mapping.remote_name(local): value}
        requests.patch(
            f"{base}/_control/{integration.provider}/records/{chosen['id']}",
            json={"fields": fields},
            timeout=3,
        ).raise_for_status()
    except requests.RequestException:
        return 0
    return 1
