"""Security tests (bad input and abuse) reuse the function tests' fakes and clients."""

from tests.functions.conftest import (  # noqa: F401  (fixtures)
    client_for,
    flow,
    post_webhook,
    run_task,
)
