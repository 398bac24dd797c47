"""`make faults`: the fault suite (issue 7, point 3).

Runs the sandbox provider, PostgreSQL, Redis, two Celery workers and the console on 127.0.0.1, injects one fault
at a time into a syncing batch of records, and checks with real queries that nothing was lost or duplicated.
See faults/README.md.
"""
