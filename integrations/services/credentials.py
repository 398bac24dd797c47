"""Credential actions: reconnect, re-authorize, update API key, rotate (filled in by the operations work)."""
__all__: list[str] = []
