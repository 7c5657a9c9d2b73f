"""Development WhatsApp simulator: a Graph-API-compatible fake plus a chat page for residents.

- `app`: `create_simulator_app`, the one Flask app (mounted by sapa.dev.localserver);
- `webhooks`: `WaSimulator`, its state and webhook engine (signing and delivering webhooks,
  statuses, redelivery);
- `store`: messages and media in SQLite; `faults`: fault injection for tests;
- `graph`: the Graph API SAPA calls; `chat` and `resident`: the page where a person plays the
  resident (templates/chat.html) and what they send; `shapes`: answers and message shapes
  both sides share.
"""

from sapa.dev.simulator.app import EXTENSION, create_simulator_app
from sapa.dev.simulator.webhooks import WaSimulator

__all__ = ["EXTENSION", "WaSimulator", "create_simulator_app"]
