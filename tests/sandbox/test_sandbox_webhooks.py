"""Sandbox webhooks: signed the provider's way, sent from a background thread, retried on 5xx."""

import base64
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.sandbox import session_for

SECRET = "whsec-test-123"


class Receiver:
    """A tiny local webhook endpoint that records what it gets and answers with scripted statuses."""

    def __init__(self, statuses=()):
        self.received = []
        self.statuses = list(statuses)
        self.cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.cond:
                    receiver.received.append({"path": self.path, "headers": self.headers, "body": body})
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    receiver.cond.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hooks/in"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def wait(self, count, timeout=5.0):
        with self.cond:
            self.cond.wait_for(lambda: len(self.received) >= count, timeout)
            return list(self.received)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def hex_hmac(message: bytes) -> str:
    return hmac.new(SECRET.encode(), message, hashlib.sha256).hexdigest()


def test_hubspot_signature_v3_and_events(sandbox, receiver):
    sandbox.subscribe("hubspot", "acme", receiver.url, SECRET)
    rec = sandbox.create_record("hubspot", "acme", {"email": "ann@acme.test", "firstname": "Ann"})
    sandbox.update_record("hubspot", rec["id"], {"firstname": "Anna", "jobtitle": "CTO"})
    got = receiver.wait(2)
    assert len(got) == 2
    for delivery in got:
        headers, body = delivery["headers"], delivery["body"]
        timestamp = headers["X-HubSpot-Request-Timestamp"]
        expected = base64.b64encode(
            hmac.new(
                SECRET.encode(), b"POST" + receiver.url.encode() + body + timestamp.encode(), hashlib.sha256
            ).digest()
        )
        assert headers["X-HubSpot-Signature-v3"] == expected.decode()
        assert abs(int(timestamp) - time.time() * 1000) < 60_000
    created, changed = sorted(
        (json.loads(d["body"]) for d in got), key=lambda e: e[0]["changeFlag"]
    )  # any order
    assert created[0]["subscriptionType"] == "contact.creation" and created[0]["objectId"] == int(rec["id"])
    assert isinstance(created[0]["portalId"], int) and created[0]["eventId"]
    assert {(e["subscriptionType"], e["propertyName"], e["propertyValue"]) for e in changed} == {
        ("contact.propertyChange", "firstname", "Anna"),
        ("contact.propertyChange", "jobtitle", "CTO"),
    }


def test_greenhouse_signature(sandbox, receiver):
    sandbox.subscribe("greenhouse", "acme", receiver.url, SECRET)
    rec = sandbox.create_record(
        "greenhouse",
        "acme",
        {"first_name": "Ann", "last_name": "Lee", "email": "ann@acme.test", "lineup_id": "L1"},
    )
    sandbox.update_record("greenhouse", rec["id"], {"title": "CTO"})
    got = receiver.wait(2)
    for delivery in got:
        assert delivery["headers"]["Signature"] == "sha256 " + hex_hmac(delivery["body"])
        assert delivery["headers"]["Greenhouse-Event-ID"]
    first, second = sorted((json.loads(d["body"]) for d in got), key=lambda e: e["action"])  # any order
    assert first["action"] == "candidate_created" and second["action"] == "candidate_updated"
    candidate = second["payload"]["candidate"]
    assert candidate["id"] == int(rec["id"]) and candidate["title"] == "CTO"
    assert candidate["custom_fields"]["lineup_id"] == "L1"
    assert got[0]["headers"]["Greenhouse-Event-ID"] != got[1]["headers"]["Greenhouse-Event-ID"]


def test_lever_signature_in_body(sandbox, receiver):
    sandbox.subscribe("lever", "acme", receiver.url, SECRET)
    rec = sandbox.create_record("lever", "acme", {"name": "Ann Lee", "email": "ann@acme.test"})
    body = json.loads(receiver.wait(1)[0]["body"])
    assert body["event"] == "candidateCreated" and body["data"]["opportunityId"] == rec["id"]
    assert body["signature"] == hex_hmac((body["token"] + str(body["triggeredAt"])).encode())


def test_pandadoc_signature_in_query(sandbox, receiver):
    sandbox.subscribe("pandadoc", "acme", receiver.url, SECRET)
    rec = sandbox.create_record("pandadoc", "acme", {"name": "Offer", "recipient_email": "ann@acme.test"})
    delivery = receiver.wait(1)[0]
    parts = urlsplit(delivery["path"])
    assert parts.path == "/hooks/in"
    assert parse_qs(parts.query)["signature"] == [hex_hmac(delivery["body"])]
    events = json.loads(delivery["body"])
    assert events[0]["event"] == "document_state_changed" and events[0]["data"]["id"] == rec["id"]


def test_retry_after_5xx(sandbox):
    receiver = Receiver(statuses=[503, 200])
    try:
        sandbox.subscribe("greenhouse", "acme", receiver.url, SECRET)
        sandbox.create_record("greenhouse", "acme", {"first_name": "A", "last_name": "B"})
        got = receiver.wait(2, timeout=4)
        assert len(got) == 2
        assert got[0]["body"] == got[1]["body"]
        time.sleep(0.05)
        deliveries = sandbox.webhooks("greenhouse")["deliveries"]
        assert [(d["attempt"], d["status"]) for d in deliveries] == [(1, 503), (2, 200)]
    finally:
        receiver.close()


def test_no_retry_on_4xx_and_connection_error_is_logged(sandbox):
    receiver = Receiver(statuses=[400])
    try:
        sandbox.subscribe("lever", "acme", receiver.url, SECRET)
        sandbox.create_record("lever", "acme", {"name": "A"})
        assert len(receiver.wait(1)) == 1
        time.sleep(0.05)
        assert [d["status"] for d in sandbox.webhooks("lever")["deliveries"]] == [400]
    finally:
        receiver.close()
    sandbox.control("pandadoc")  # nothing listening on the closed receiver's port now
    sandbox.subscribe("pandadoc", "acme", receiver.url, SECRET)
    sandbox.create_record("pandadoc", "acme", {"name": "Offer"})
    deadline = time.time() + 3
    while time.time() < deadline and not sandbox.webhooks("pandadoc")["deliveries"]:
        time.sleep(0.05)
    first = sandbox.webhooks("pandadoc")["deliveries"][0]
    assert first["status"] is None and first["error"]


def test_only_the_accounts_ui_changes_send_webhooks(sandbox, receiver):
    sandbox.subscribe("hubspot", "acme", receiver.url, SECRET)
    sandbox.create_record("hubspot", "globex", {"email": "x@globex.test"})  # another account
    s = session_for("hubspot", sandbox.credentials("hubspot", "acme"))
    r = s.post(
        sandbox.base_url("hubspot") + "/crm/v3/objects/contacts",
        json={"properties": {"email": "a@b.c"}},
        timeout=5,
    )
    assert r.status_code == 201  # API writes are ours: no webhook
    time.sleep(0.3)
    assert receiver.received == []
    sandbox._json("DELETE", "/hubspot/webhooks")
    sandbox.create_record("hubspot", "acme", {"email": "y@acme.test"})
    time.sleep(0.3)
    assert receiver.received == []


def test_polling_providers_refuse_subscriptions(sandbox):
    for provider in ("salesforce", "workday", "clearbit"):
        r = sandbox.http.post(
            f"{sandbox.url}/_control/{provider}/webhooks",
            json={"account": "acme", "url": "http://127.0.0.1:1/x", "secret": "s"},
            timeout=5,
        )
        assert r.status_code == 400
