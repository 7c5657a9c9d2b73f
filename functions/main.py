"""Every Cloud Function entry point of SAPA; deploy this one bundle with --entry-point=<name>."""

import os
import sys

# In the repository the shared package lives beside this folder; in a deploy bundle it is
# copied next to this file. Make both layouts importable without installing anything.
_here = os.path.dirname(os.path.abspath(__file__))
for _p in (_here, os.path.join(os.path.dirname(_here), "shared")):
    if os.path.isdir(os.path.join(_p, "sapa")) and _p not in sys.path:
        sys.path.insert(0, _p)
if _here not in sys.path:
    sys.path.insert(0, _here)

from approval import approval_http as approval  # noqa: E402
from command import command  # noqa: E402
from deliver import deliver  # noqa: E402
from esign_callback import esign_callback  # noqa: E402
from esign_request import esign_request  # noqa: E402
from guestbook import guestbook_http as guestbook  # noqa: E402
from media_store import media_store  # noqa: E402
from notify import notify  # noqa: E402
from precheck import precheck  # noqa: E402
from retention_sweep import retention_sweep  # noqa: E402
from siak_handoff import siak_handoff  # noqa: E402
from sla_sweep import sla_sweep  # noqa: E402
from staff import staff_http as staff  # noqa: E402
from verify import verify_http as verify  # noqa: E402
from wa_webhook import wa_webhook  # noqa: E402

__all__ = [
    "approval",
    "command",
    "deliver",
    "esign_callback",
    "esign_request",
    "guestbook",
    "media_store",
    "notify",
    "precheck",
    "retention_sweep",
    "siak_handoff",
    "sla_sweep",
    "staff",
    "verify",
    "wa_webhook",
]
