"""Admin actions for the credentials operations."""

INTEGRATION_ACTIONS: list = []
SYNCLOG_ACTIONS: list = []
RECORD_ACTIONS: list = []
WEBHOOK_ACTIONS: list = []
DEFECT_ACTIONS: list = []
