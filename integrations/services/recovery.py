"""Recovery actions: retry failed, webhook retries, stale defects, modes, reconcile, verify (operations work)."""
__all__: list[str] = []
