"""Queue function: copy a resident's WhatsApp media into the BlobStore and attach it."""

from typing import Any

from _edge import task_function
from sapa.bootstrap import Container
from sapa.services import media as service


@task_function(give_up=service.media_failed)
def media_store(c: Container, payload: dict[str, Any], name: str) -> Any:
    return service.media_store(c, payload)
