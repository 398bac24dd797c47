"""Webhooks the providers send when a record changes "in their UI" (control API writes).

Each provider signs its own way (docs/provider-contract.md, "Webhooks"); deliveries go out from a background
thread and are retried after 1, 2, 4 s on a connection error, a 5xx or a 429.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
import urllib.error
import urllib.request
import uuid
import zlib
from collections.abc import Callable
from urllib.parse import urlsplit

from sandbox.facts import WEBHOOK_PROVIDERS
from sandbox.state import ProviderState, Record, SandboxState, Subscription, iso_ms, now_ms

logger = logging.getLogger("sandbox")

DEFAULT_RETRY_DELAYS = (1.0, 2.0, 4.0)
DELIVERY_TIMEOUT = 5.0
HUBSPOT_APP_ID = 1160452

# A delivery: attempt number (1-based) -> (url, headers, body)
Builder = Callable[[int], tuple[str, dict[str, str], bytes]]


def hmac_hex(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def hubspot_signature_v3(secret: str, method: str, url: str, body: bytes, timestamp: str) -> str:
    message = method.encode() + url.encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def portal_id(account: str) -> int:
    """HubSpot portal id of an account: stable, derived from the account name."""
    return 10_000_000 + zlib.crc32(account.encode()) % 90_000_000


def _event_builders(provider, pstate: ProviderState, sub: Subscription, rec: Record, created: bool,
                    changed: dict) -> list[tuple[str, Builder]]:
    """(event id, builder) for each delivery one change makes to one subscription."""
    slug = pstate.slug
    if slug == "hubspot":
        base = {"subscriptionId": sub.id, "portalId": portal_id(rec.account), "appId": HUBSPOT_APP_ID,
                "occurredAt": now_ms(), "objectId": int(rec.id), "changeSource": "CRM_UI", "changeFlag":
                "NEW" if created else "UPDATED", "sourceId": "userId:1"}
        if created:
            events = [{**base, "eventId": secrets.randbelow(10**9), "subscriptionType": "contact.creation"}]
        else:
            events = [{**base, "eventId": secrets.randbelow(10**9), "subscriptionType": "contact.propertyChange",
                       "propertyName": name, "propertyValue": "" if value is None else str(value)}
                      for name, value in changed.items()]
        if not events:
            return []

        def build(attempt: int) -> tuple[str, dict[str, str], bytes]:
            body = json.dumps([{**e, "attemptNumber": attempt - 1} for e in events]).encode()
            timestamp = str(now_ms())
            return sub.url, {
                "Content-Type": "application/json",
                "X-HubSpot-Request-Timestamp": timestamp,
                "X-HubSpot-Signature-v3": hubspot_signature_v3(sub.secret, "POST", sub.url, body, timestamp),
                "X-HubSpot-Signature-Version": "v3",
            }, body

        return [(str(events[0]["eventId"]), build)]

    if slug == "greenhouse":
        event_id = str(uuid.uuid4())
        body = json.dumps({"action": "candidate_created" if created else "candidate_updated",
                           "payload": {"candidate": provider.render(rec)}}).encode()
        headers = {"Content-Type": "application/json", "Signature": "sha256 " + hmac_hex(sub.secret, body),
                   "Greenhouse-Event-ID": event_id}
        return [(event_id, lambda attempt: (sub.url, headers, body))]

    if slug == "lever":
        event_id = str(uuid.uuid4())
        triggered = now_ms()
        token = secrets.token_hex(16)
        payload = {"id": event_id, "triggeredAt": triggered,
                   "event": "candidateCreated" if created else "candidateUpdated", "token": token,
                   "signature": hmac_hex(sub.secret, (token + str(triggered)).encode()),
                   "data": {"opportunityId": rec.id, "candidateId": rec.id,
                            "contactId": provider.render(rec)["contact"]}}
        body = json.dumps(payload).encode()
        return [(event_id, lambda attempt: (sub.url, {"Content-Type": "application/json"}, body))]

    if slug == "pandadoc":
        event_id = str(uuid.uuid4())
        body = json.dumps([{"event": "document_state_changed", "data": provider.render(rec)}]).encode()
        separator = "&" if urlsplit(sub.url).query else "?"
        url = f"{sub.url}{separator}signature={hmac_hex(sub.secret, body)}"
        return [(event_id, lambda attempt: (url, {"Content-Type": "application/json"}, body))]
    return []


class WebhookSender:
    def __init__(self, state: SandboxState, providers: dict, stop_event: threading.Event,
                 retry_delays: tuple[float, ...] = DEFAULT_RETRY_DELAYS):
        self.state = state
        self.providers = providers
        self.stop_event = stop_event
        self.retry_delays = tuple(retry_delays)

    def record_changed(self, pstate: ProviderState, rec: Record, created: bool, changed: dict) -> None:
        """Queue the deliveries for one change. Called with the state lock held."""
        if pstate.slug not in WEBHOOK_PROVIDERS or (not created and not changed):
            return
        provider = self.providers[pstate.slug]
        for sub in pstate.subscriptions:
            if sub.account != rec.account:
                continue
            for event_id, build in _event_builders(provider, pstate, sub, rec, created, changed):
                thread = threading.Thread(target=self._deliver, name=f"sandbox-webhook-{pstate.slug}",
                                          args=(pstate, self.state.generation, event_id, build), daemon=True)
                thread.start()

    def _deliver(self, pstate: ProviderState, generation: int, event_id: str, build: Builder) -> None:
        attempts = 1 + len(self.retry_delays)
        for attempt in range(1, attempts + 1):
            if self.stop_event.is_set() or self.state.generation != generation:
                return
            url, headers, body = build(attempt)
            status, error = self._post(url, headers, body)
            with self.state.lock:
                if self.state.generation != generation:
                    return
                pstate.deliveries.append({"at": iso_ms(now_ms()), "event_id": event_id,
                                          "url": url.split("?")[0], "attempt": attempt, "status": status,
                                          "error": error})
            logger.info("webhook %s %s attempt %d -> %s", pstate.slug, url.split("?")[0], attempt,
                        status or error)
            if status is not None and status < 500 and status != 429:
                return
            if attempt < attempts and self.stop_event.wait(self.retry_delays[attempt - 1]):
                return

    @staticmethod
    def _post(url: str, headers: dict[str, str], body: bytes) -> tuple[int | None, str | None]:
        request = urllib.request.Request(url, data=body, headers={"User-Agent": "LineupSandbox-Webhooks/1.0",
                                                                   **headers}, method="POST")
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=DELIVERY_TIMEOUT) as response:  # noqa: S310
                response.read()
                return response.status, None
        except urllib.error.HTTPError as exc:
            return exc.code, None
        except (urllib.error.URLError, OSError) as exc:
            return None, f"{type(exc).__name__}: {getattr(exc, 'reason', exc)} after " \
                         f"{time.monotonic() - started:.1f}s"
