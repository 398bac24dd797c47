"""Detectors that open or update incidents: `rates` (the console's own error rates per provider over 15
minutes, every minute) and `alertmanager` (Alertmanager's webhook). Both go through
`incidents.services.opening.open_or_update_incident`."""
