"""Running untrusted, LM-written code in a separate, isolated, resource-limited process (see :mod:`.core`)."""

from lmscope.sandbox.core import (
    PYTHON,
    STATUSES,
    Limits,
    SandboxResult,
    SandboxUnavailable,
    run_sandboxed,
    sandbox_backend,
)
from lmscope.sandbox.pool import run_many

__all__ = ["PYTHON", "STATUSES", "Limits", "SandboxResult", "SandboxUnavailable", "run_many", "run_sandboxed",
           "sandbox_backend"]
