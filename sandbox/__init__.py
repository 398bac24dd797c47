"""The sandbox: a real HTTP server standing in for the seven providers' APIs (see docs/provider-contract.md).

It is "other companies' servers": not a Django app, it imports nothing of the console (lineup_ops,
integrations, incidents, dashboard) nor Django, and never touches the console's database
(tests/sandbox/test_isolation.py checks it).

- facts.py: what each provider publishes (quota, token lifetime, auth type, webhook signing, ...), written
  from ../shared/docs/provider-api-facts.md; tests/sandbox/test_facts.py compares it with the console's catalogue.
- providers/: one module per provider (routes, record shapes, error bodies, webhook signing) on base.py.
- server.py the HTTP server and dispatch; control.py the /_control API; state.py the in-memory state;
  wire.py request and response values; webhooks.py the sender and its retries; consent.py the OAuth consent page.
"""

from sandbox.server import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, SandboxServer

__all__ = ["DEFAULT_CLIENT_ID", "DEFAULT_CLIENT_SECRET", "SandboxServer"]
