"""The incidents app's refusals: constant messages that screens and tests reuse."""

from integrations.errors import Conflict, ServiceError  # noqa: F401

BACKWARDS = "An incident's status only moves forward: {current} cannot become {target}."
UNKNOWN_STATUS = "Unknown status '{target}'."
UNKNOWN_RUNBOOK = "Unknown runbook '{runbook}'."
UNKNOWN_PROVIDER = "Unknown provider '{provider}'."
UNKNOWN_ACTION = "Unknown action '{action}'."
VERIFICATION_FAILING = "Cannot resolve: verification checks do not pass yet ({failing}). Give a written reason to resolve anyway."
POSTMORTEM_REQUIRED = "Cannot close: this incident needs a complete postmortem ({why}); fill in {missing}."
INCIDENT_FINISHED = "This incident is {status}: its checklist can no longer be run."
NOTE_REQUIRED = "A note needs some text."
ITEM_HAS_CHECK = "This item completes itself when its check passes; it cannot be ticked by hand."
ITEM_IS_GROUP = "This step is done when its sub-steps are; tick or skip those instead."
ITEM_HAS_ACTION = (
    "This step is done when its work is done, from the tracker, the admin, the API or a command; it cannot be "
    "ticked by hand."
)
ITEM_NOT_IN_INCIDENT = "That checklist item does not belong to this incident."
ALREADY_ACTIVE = "An active {runbook} incident for {provider} already exists: INC-{pk}."
NO_AFFECTED_TENANTS = "No affected tenants are recorded for this incident."
FOLLOW_UP_INCOMPLETE = "Each follow-up item needs both a description and an owner."
SKIP_REASON_REQUIRED = "Skipping a post-incident item needs a written reason."
SKIP_ONLY_POST_INCIDENT = "Only post-incident items can be skipped."
POST_INCIDENT_OPEN = "Cannot close: post-incident items are neither done nor skipped ({items}). Do them, or skip each with a reason."
