"""Every change to an incident, one function each, in one module per subject. Import the module you need
(`from incidents.services import status`); this package re-exports nothing.

The modules sit on two sides of the runbooks: `timeline` (the event, audit, lock and permission helpers every
service shares) and `communication` (notes, tenant notices, escalation) are below the checklist actions, which
call them; `opening`, `status`, `checklist` and `postmortem` are above the runbooks, whose checklists they
create and run. A package that imported them all would make the actions import the runbooks that import them.
"""
