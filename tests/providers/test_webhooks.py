"""Webhook signatures (good, bad, stale) and payload parsing, per provider."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from integrations.providers import ProviderError, get_client_class
from integrations.providers.base import hmac_b64, hmac_hex

SECRET = "whsec-1"
URL = "https://console.example/hooks/hubspot/5"
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)

BODIES = {
    "hubspot": [
        {
            "eventId": 11,
            "subscriptionId": 3,
            "portalId": 99,
            "occurredAt": 1740830400000,
            "subscriptionType": "contact.creation",
            "objectId": 501,
        },
        {
            "eventId": 12,
            "subscriptionId": 4,
            "portalId": 99,
            "occurredAt": 1740830401000,
            "subscriptionType": "contact.propertyChange",
            "objectId": 502,
            "propertyName": "email",
            "propertyValue": "x@y.z",
        },
    ],
    "greenhouse": {
        "action": "candidate_updated",
        "payload": {"candidate": {"id": 77, "updated_at": "2025-03-01T12:00:00Z"}},
    },
    "lever": {
        "id": "evt-1",
        "triggeredAt": 1740830400000,
        "event": "candidateCreated",
        "data": {"opportunityId": "opp-9"},
    },
    "pandadoc": [
        {
            "event": "document_state_changed",
            "data": {"id": "doc-5", "status": "document.completed", "date_modified": "2025-03-01T12:00:00Z"},
        }
    ],
}
EXPECTED = {
    "hubspot": [("11", "501", "created"), ("12", "502", "updated")],
    "greenhouse": [(None, "77", "updated")],
    "lever": [(None, "opp-9", "created")],  # the dedupe id comes from the signed token + triggeredAt
    "pandadoc": [(None, "doc-5", "updated")],
}


def signed(provider, body_obj, *, now=NOW, secret=SECRET):
    body = json.dumps(body_obj).encode()
    return get_client_class(provider).sign_webhook(secret=secret, method="POST", url=URL, body=body, now=now)


@pytest.mark.parametrize("provider", sorted(BODIES))
def test_good_signature_verifies_and_parses(provider):
    url, headers, body = signed(provider, BODIES[provider])
    assert get_client_class(provider).verify_webhook(
        secret=SECRET, method="POST", url=url, headers=headers, body=body, now=NOW + timedelta(seconds=30)
    )
    events = get_client_class(provider).parse_webhook(headers=headers, body=body)
    got = [(e.event_id, e.remote_id, e.action) for e in events]
    for (event_id, remote_id, action), event in zip(EXPECTED[provider], events, strict=True):
        assert (event.remote_id, event.action) == (remote_id, action), got
        assert event.event_id == event_id if event_id else event.event_id
        assert isinstance(event.raw, dict)


@pytest.mark.parametrize("provider", sorted(BODIES))
def test_wrong_secret_is_refused(provider):
    url, headers, body = signed(provider, BODIES[provider], secret="other")
    assert not get_client_class(provider).verify_webhook(
        secret=SECRET, method="POST", url=url, headers=headers, body=body, now=NOW
    )


@pytest.mark.parametrize("provider", sorted(BODIES))
def test_tampered_body_is_refused(provider):
    url, headers, body = signed(provider, BODIES[provider])
    # Lever signs only token + triggeredAt (its design), so the replayable part is the timestamp.
    tampered = body.replace(b"1740830400000", b"1740830400001").replace(b"501", b"500").replace(b"77", b"78")
    tampered = tampered.replace(b"doc-5", b"doc-6")
    assert tampered != body
    assert not get_client_class(provider).verify_webhook(
        secret=SECRET, method="POST", url=url, headers=headers, body=tampered, now=NOW
    )


@pytest.mark.parametrize("provider", sorted(BODIES))
def test_missing_signature_is_refused(provider):
    body = json.dumps(BODIES[provider]).encode()
    assert not get_client_class(provider).verify_webhook(
        secret=SECRET, method="POST", url=URL, headers={}, body=body, now=NOW
    )


def test_hubspot_signature_matches_the_documented_recipe():
    body = json.dumps(BODIES["hubspot"]).encode()
    timestamp = str(int(NOW.timestamp() * 1000))
    signature = hmac_b64(SECRET, "POST" + URL + body.decode() + timestamp)
    headers = {
        "x-hubspot-signature-v3": signature,
        "x-hubspot-request-timestamp": timestamp,
    }  # any header case
    assert get_client_class("hubspot").verify_webhook(
        secret=SECRET, method="POST", url=URL, headers=headers, body=body, now=NOW
    )
    # the signature covers the URL and the method
    assert not get_client_class("hubspot").verify_webhook(
        secret=SECRET, method="POST", url=URL + "?x=1", headers=headers, body=body, now=NOW
    )
    assert not get_client_class("hubspot").verify_webhook(
        secret=SECRET, method="PUT", url=URL, headers=headers, body=body, now=NOW
    )


def test_hubspot_stale_delivery_is_refused():
    url, headers, body = signed("hubspot", BODIES["hubspot"], now=NOW)
    ok = dict(secret=SECRET, method="POST", url=url, headers=headers, body=body)
    assert get_client_class("hubspot").verify_webhook(**ok, now=NOW + timedelta(minutes=4, seconds=59))
    assert not get_client_class("hubspot").verify_webhook(**ok, now=NOW + timedelta(minutes=5, seconds=1))
    assert not get_client_class("hubspot").verify_webhook(
        **ok, now=NOW - timedelta(minutes=6)
    )  # from the future
    bad_ts = {**headers, "X-HubSpot-Request-Timestamp": "yesterday"}
    assert not get_client_class("hubspot").verify_webhook(
        secret=SECRET, method="POST", url=url, headers=bad_ts, body=body, now=NOW
    )


def test_greenhouse_recipe_and_event_id_header():
    body = json.dumps(BODIES["greenhouse"]).encode()
    headers = {"Signature": f"sha256 {hmac_hex(SECRET, body)}", "Greenhouse-Event-ID": "ev-42"}
    assert get_client_class("greenhouse").verify_webhook(
        secret=SECRET, method="POST", url=URL, headers=headers, body=body
    )
    # Greenhouse-Event-ID is not signed: the dedupe id is the signed body's hash, whatever the header says.
    event_id = get_client_class("greenhouse").parse_webhook(headers=headers, body=body)[0].event_id
    other = {**headers, "Greenhouse-Event-ID": "ev-43"}
    assert get_client_class("greenhouse").parse_webhook(headers=other, body=body)[0].event_id == event_id
    assert not get_client_class("greenhouse").verify_webhook(
        secret=SECRET,
        method="POST",
        url=URL,
        headers={"Signature": f"sha1 {hmac_hex(SECRET, body)}"},
        body=body,
    )


def test_lever_recipe():
    data = {**BODIES["lever"], "token": "tok"}
    data["signature"] = hmac_hex(SECRET, "tok" + str(data["triggeredAt"]))
    body = json.dumps(data).encode()
    assert get_client_class("lever").verify_webhook(
        secret=SECRET, method="POST", url=URL, headers={}, body=body, now=NOW
    )
    event = get_client_class("lever").parse_webhook(headers={}, body=body)[0]
    assert event.occurred_at == datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def test_pandadoc_recipe():
    body = json.dumps(BODIES["pandadoc"]).encode()
    url = f"{URL}?signature={hmac_hex(SECRET, body)}"
    assert get_client_class("pandadoc").verify_webhook(
        secret=SECRET, method="POST", url=url, headers={}, body=body
    )
    # a redelivery of the same event gets the same id, so the console can drop it
    first = get_client_class("pandadoc").parse_webhook(headers={}, body=body)[0].event_id
    assert get_client_class("pandadoc").parse_webhook(headers={}, body=body)[0].event_id == first


@pytest.mark.parametrize(
    ("provider", "body"),
    [
        ("hubspot", b"not json"),
        ("hubspot", b'[{"eventId": 1}]'),
        ("hubspot", b'"a string"'),
        ("greenhouse", b'{"action": "candidate_updated", "payload": {}}'),
        ("greenhouse", b"{"),
        ("lever", b'{"event": "candidateCreated", "data": {}}'),
        ("pandadoc", b'[{"event": "document_state_changed"}]'),
    ],
)
def test_malformed_payloads_raise_validation(provider, body):
    with pytest.raises(ProviderError) as exc:
        get_client_class(provider).parse_webhook(headers={}, body=body)
    assert exc.value.category == "validation"


@pytest.mark.parametrize("provider", ["salesforce", "workday", "clearbit"])
def test_polling_only_providers_have_no_webhooks(provider):
    assert not get_client_class(provider).supports_webhooks
    assert not get_client_class(provider).verify_webhook(
        secret=SECRET, method="POST", url=URL, headers={}, body=b"{}"
    )
    with pytest.raises(ProviderError) as exc:
        get_client_class(provider).parse_webhook(headers={}, body=b"{}")
    assert exc.value.category == "validation"
