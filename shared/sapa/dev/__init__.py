"""Development tools, not production code: nothing outside this package imports it, and the
deploy bundle (scripts/bundle.py) leaves it out.

- `localserver`: every function, the task worker and the WhatsApp simulator on one port
  (`make run`, `python -m sapa.dev.localserver`);
- `simulator`: the WhatsApp simulator (a Graph API fake and a chat page for residents);
- `demo`: one request through all eight SOP steps over HTTP (`make demo`);
- `seed`: a month of synthetic cases for the dashboard (`python -m sapa.dev.seed`).
"""
