"""Pytest plugin: a real sandbox provider server for the whole session, reset before each test.

Loaded from the root conftest (`pytest_plugins = ["tests.support.sandbox"]`). Never touches the database.
"""

from __future__ import annotations

import pytest
import requests

from sandbox import SandboxServer


class SandboxHelper:
    """Thin client of the sandbox's control API, for tests."""

    def __init__(self, server: SandboxServer):
        self.server = server
        self.url = server.url
        self.http = requests.Session()

    def base_url(self, provider: str) -> str:
        """What an integration's base_url is for this provider."""
        return f"{self.url}/{provider}"

    def _json(self, method: str, path: str, **kwargs):
        response = self.http.request(method, f"{self.url}/_control{path}", timeout=10, **kwargs)
        response.raise_for_status()
        return response.json()

    def control(self, provider: str, **changes) -> dict:
        """POST /_control/{provider} with the changes (mode=..., rate_limit=..., reject=...); the new state."""
        return self._json("POST", f"/{provider}", json=changes)

    def state(self, provider: str) -> dict:
        return self._json("GET", f"/{provider}")

    def credentials(self, provider: str, account: str) -> dict:
        return self._json("POST", f"/{provider}/credentials", json={"account": account})

    def records(self, provider: str, account: str | None = None) -> list[dict]:
        params = {"account": account} if account else {}
        return self._json("GET", f"/{provider}/records", params=params)["records"]

    def create_record(self, provider: str, account: str, fields: dict) -> dict:
        """A record made "in the provider's UI" (sends webhooks)."""
        return self._json("POST", f"/{provider}/records", json={"account": account, "fields": fields})

    def update_record(self, provider: str, record_id: str, fields: dict) -> dict:
        return self._json("PATCH", f"/{provider}/records/{record_id}", json={"fields": fields})

    def delete_record(self, provider: str, record_id: str) -> dict:
        return self._json("DELETE", f"/{provider}/records/{record_id}")

    def subscribe(self, provider: str, account: str, url: str, secret: str) -> dict:
        return self._json(
            "POST", f"/{provider}/webhooks", json={"account": account, "url": url, "secret": secret}
        )

    def webhooks(self, provider: str) -> dict:
        """{"subscriptions": [...], "deliveries": [...]}"""
        return self._json("GET", f"/{provider}/webhooks")

    def requests(self, provider: str, account: str | None = None, limit: int = 10_000) -> list[dict]:
        params = {"limit": limit}
        if account:
            params["account"] = account
        return self._json("GET", f"/{provider}/requests", params=params)["requests"]

    def reset(self) -> None:
        self._json("POST", "/reset")

    def close(self) -> None:
        self.http.close()


@pytest.fixture(scope="session")
def sandbox_server():
    server = SandboxServer(host="127.0.0.1", port=0)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def sandbox(sandbox_server):
    helper = SandboxHelper(sandbox_server)
    helper.reset()
    yield helper
    helper.close()
