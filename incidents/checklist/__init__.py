"""What a runbook step runs: `actions` (operations on the incident's provider and affected integrations, each
calling one service) and `checks` (read-only queries that say whether a step's condition holds now). A runbook
Step names them by the objects themselves; `incidents.services.checklist` runs them for an incident."""
