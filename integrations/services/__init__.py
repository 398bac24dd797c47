"""Every action on integrations is one function here, called alike by admin, API, commands, tasks and incidents.

The functions live in modules by area; import them from `integrations.services`.
"""
from integrations.services.core import *  # noqa: F403
from integrations.services.core import ActionResult, audit, settled_status  # noqa: F401
from integrations.services.credentials import *  # noqa: F403
from integrations.services.diagnostics import *  # noqa: F403
from integrations.services.recovery import *  # noqa: F403
from integrations.services.throttle import *  # noqa: F403
