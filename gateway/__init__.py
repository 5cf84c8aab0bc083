"""HTTP gateway: a Falcon app under gunicorn that validates, authenticates and dispatches RPC."""

import warnings

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")  # nameko imports eventlet
