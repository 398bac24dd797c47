"""Helpers that several test modules share: factories, the sandbox fixture, real workers, sync helpers."""
