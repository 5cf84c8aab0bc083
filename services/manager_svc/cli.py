"""manager_svc's part of the ``tracker`` command: ``tracker admin create USERNAME`` (contract §7).

The CLI reaches it through the plugin (tracker.plugins.Plugin.cli), never by importing this
service. Registering costs no import beyond argparse: ``tracker serve`` must let eventlet patch
the standard library before anything loads the database driver, so the command's own code
(services/manager_svc/admin.py) is imported only when it runs.
"""

from __future__ import annotations

import argparse
import sys


def _create(args: argparse.Namespace) -> int:
    from services.manager_svc.admin import create_admin_from_cli

    return create_admin_from_cli(args.username, sys.stdin)


def register(sub) -> None:
    """Add ``admin create`` to the ``tracker`` command's subparsers ``sub``."""
    admin = sub.add_parser("admin", help="manager accounts")
    admin_sub = admin.add_subparsers(dest="admin_command", required=True)
    create = admin_sub.add_parser("create", help="create a tracker admin; password on stdin")
    create.add_argument("username")
    create.set_defaults(func=_create)
