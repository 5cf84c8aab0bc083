"""Gateway routes of git_svc."""

from services.git_svc.messages import (
    ALREADY_APPLIED,
    DELIVERY_HEADER_DOCS,
    IGNORED,
    SIGNATURE_HEADER_NAMES,
    PushPayload,
)
from tracker.routing import Doc, RawBody, Route

ROUTES = [
    # RawBody: the service gets the exact bytes (the signature covers them) and the signature headers,
    # so that a missing signature header (401) is answered before any body error (400).
    Route("POST", "/git/receivehook", "receive_hook",
          extras=(RawBody(PushPayload, SIGNATURE_HEADER_NAMES, DELIVERY_HEADER_DOCS),),
          doc=Doc("Git push webhook (GitHub, Gitea, Gogs): set the version of the signed projects",
                  declined=True, declined_messages=(IGNORED, ALREADY_APPLIED), errors=(403,))),
]
