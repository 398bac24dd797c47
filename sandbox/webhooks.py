"""Webhooks the providers send when a record changes "in their UI" (control API writes).

Each provider builds and signs its own deliveries (`webhook_deliveries` in sandbox/providers/<slug>.py, as
docs/provider-contract.md, "Webhooks", says); this module sends them from a background thread and retries
after 1, 2, 4 s on a connection error, a 5xx or a 429.
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.error
import urllib.request
from typing import TYPE_CHECKING

from sandbox.facts import WEBHOOK_PROVIDERS
from sandbox.state import ProviderState, Record, SandboxState, iso_ms, now_ms

if TYPE_CHECKING:
    from sandbox.providers.base import Builder

logger = logging.getLogger("sandbox")

DEFAULT_RETRY_DELAYS = (1.0, 2.0, 4.0)
DELIVERY_TIMEOUT = 5.0


class WebhookSender:
    def __init__(
        self,
        state: SandboxState,
        providers: dict,
        stop_event: threading.Event,
        retry_delays: tuple[float, ...] = DEFAULT_RETRY_DELAYS,
    ):
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
            for event_id, build in provider.webhook_deliveries(sub, rec, created, changed):
                thread = threading.Thread(
                    target=self._deliver,
                    name=f"sandbox-webhook-{pstate.slug}",
                    args=(pstate, self.state.generation, event_id, build),
                    daemon=True,
                )
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
                pstate.deliveries.append(
                    {
                        "at": iso_ms(now_ms()),
                        "event_id": event_id,
                        "url": url.split("?")[0],
                        "attempt": attempt,
                        "status": status,
                        "error": error,
                    }
                )
            logger.info(
                "webhook %s %s attempt %d -> %s", pstate.slug, url.split("?")[0], attempt, status or error
            )
            if status is not None and status < 500 and status != 429:
                return
            if attempt < attempts and self.stop_event.wait(self.retry_delays[attempt - 1]):
                return

    @staticmethod
    def _post(url: str, headers: dict[str, str], body: bytes) -> tuple[int | None, str | None]:
        request = urllib.request.Request(
            url, data=body, headers={"User-Agent": "LineupSandbox-Webhooks/1.0", **headers}, method="POST"
        )
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=DELIVERY_TIMEOUT) as response:  # noqa: S310
                response.read()
                return response.status, None
        except urllib.error.HTTPError as exc:
            return exc.code, None
        except (urllib.error.URLError, OSError) as exc:
            return (
                None,
                f"{type(exc).__name__}: {getattr(exc, 'reason', exc)} after "
                f"{time.monotonic() - started:.1f}s",
            )
