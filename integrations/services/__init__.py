"""Every action on integrations is one function here, called alike by admin, API, commands, tasks and incidents.

The functions live in modules by area; import them from `integrations.services`.
"""
from .core import *  # noqa: F403
from .core import ActionResult, audit, settled_status  # noqa: F401
from .credentials import *  # noqa: F403
from .diagnostics import *  # noqa: F403
from .recovery import *  # noqa: F403
from .throttle import *  # noqa: F403
