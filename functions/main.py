"""Every Cloud Function entry point of SAPA; deploy this one bundle with --entry-point=<name>.

Entry points are resolved lazily (PEP 562 module `__getattr__`): a function instance imports
only its own module and what that uses, so the webhook's cold start does not pay for the
signer, the image library or the templates of the staff pages."""

import importlib
import os
import sys
from typing import Any

# In the repository the shared package lives beside this folder; in a deploy bundle it is
# copied next to this file. Make both layouts importable without installing anything.
_here = os.path.dirname(os.path.abspath(__file__))
for _p in (_here, os.path.join(os.path.dirname(_here), "shared")):
    if os.path.isdir(os.path.join(_p, "sapa")) and _p not in sys.path:
        sys.path.insert(0, _p)
if _here not in sys.path:
    sys.path.insert(0, _here)

if os.environ.get("K_SERVICE"):  # on Cloud Functions / Cloud Run: JSON logs, NIK and phones
    # masked (without this, Python's last-resort handler prints warnings raw to stderr)
    from sapa import log as _log

    _log.setup(os.environ.get("LOG_LEVEL", "INFO"))

# entry point name → (module, attribute)
ENTRY_POINTS = {
    "approval": ("approval", "approval_http"),
    "command": ("command", "command"),
    "deliver": ("deliver", "deliver"),
    "esign_callback": ("esign_callback", "esign_callback"),
    "esign_request": ("esign_request", "esign_request"),
    "guestbook": ("guestbook", "guestbook_http"),
    "media_store": ("media_store", "media_store"),
    "notify": ("notify", "notify"),
    "precheck": ("precheck", "precheck"),
    "retention_sweep": ("retention_sweep", "retention_sweep"),
    "siak_handoff": ("siak_handoff", "siak_handoff"),
    "sla_sweep": ("sla_sweep", "sla_sweep"),
    "staff": ("staff", "staff_http"),
    "verify": ("verify", "verify_http"),
    "wa_webhook": ("wa_webhook", "wa_webhook"),
}

__all__ = sorted(ENTRY_POINTS)


def __getattr__(name: str) -> Any:
    try:
        module, attribute = ENTRY_POINTS[name]
    except KeyError:
        raise AttributeError(name) from None
    function = getattr(importlib.import_module(module), attribute)
    globals()[name] = function  # resolved once per process
    return function


def __dir__() -> list[str]:
    return sorted([*globals(), *ENTRY_POINTS])
