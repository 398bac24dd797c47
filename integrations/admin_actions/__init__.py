"""Admin bulk actions by area, as module-level functions; admin.py lists them on each changelist.

Each action: `@admin.action(description=..., permissions=["operate"])`, confirms with
`admin_utils.run_confirmed_action`, calls one service, reports counts.
"""
