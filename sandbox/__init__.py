"""The sandbox provider: a real HTTP server standing in for the providers' APIs (see docs/provider-contract.md).

It is "other companies' servers": it never imports the console's models nor touches its database.
"""
from sandbox.server import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, SandboxServer

__all__ = ["DEFAULT_CLIENT_ID", "DEFAULT_CLIENT_SECRET", "SandboxServer"]
