"""Schema migrations (Alembic) and database creation, for the CLI and the test harness."""

from __future__ import annotations

from pathlib import Path

import psycopg
from alembic import command
from alembic.config import Config
from psycopg import sql

from tracker.settings import Settings, get_settings

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def ensure_database(settings: Settings | None = None) -> bool:
    """Create the configured database if missing (a fresh machine has none); True if created."""
    settings = settings or get_settings()
    url = psycopg.conninfo.conninfo_to_dict(settings.libpq_url)
    name = url.get("dbname") or "postgres"
    admin = {**url, "dbname": "postgres"}
    with psycopg.connect(**admin, autocommit=True, connect_timeout=5) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists:
            return False
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return True


def upgrade(revision: str = "head") -> None:
    ensure_database()
    command.upgrade(alembic_config(), revision)
