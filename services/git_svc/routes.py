"""Gateway routes of git_svc."""

from services.git_svc.messages import (
    ALREADY_APPLIED,
    DELIVERY_HEADER_DOCS,
    IGNORED,
    SIGNATURE_HEADER_NAMES,
    PushPayload,
)
from tracker.routing import Route

ROUTES = [
    # raw_body: the service gets the exact bytes (the signature covers them) and the signature headers,
    # so that a missing signature header (401) is answered before any body error (400).
    Route("POST", "/git/receivehook", "receive_hook", raw_body=True,
          raw_schema=PushPayload, headers=SIGNATURE_HEADER_NAMES, declined=True, errors=(403,),
          optional_headers=DELIVERY_HEADER_DOCS, declined_messages=(IGNORED, ALREADY_APPLIED),
          summary="Git push webhook (GitHub, Gitea, Gogs): set the version of the signed projects"),
]
