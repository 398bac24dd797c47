"""Admin bulk actions by area, as module-level functions; integrations/admin/__init__.py lists them on each changelist.

Each action: `@admin.action(description=..., permissions=["operate"])`, confirms with
`integrations.admin.confirm.run_confirmed_action`, calls one service, reports counts.
"""
