"""recipe search: a trigram index on a side table the hot path never writes

Revision ID: 0010
Revises: 0009

``GET /project/tasks/:id?q=`` (contract §6.8) finds tasks whose recipe contains a text,
case-insensitively, in projects of a million tasks. ``recipe ILIKE '%…%'`` can only be served by a
trigram index (``pg_trgm``); without one it reads every task of the project.

The index is not on ``task``: every get and release updates the task row, and since ``status`` and
``assignee`` appear in the predicates of ``task_pick`` and ``task_lease`` those updates are never
HOT, so each one would insert the recipe's every trigram into a GIN index on ``task`` again.
Measured (``python -m bench.search_sql``, docs/PERFORMANCE.md "Recipe search"): one such update
costs 0.3 ms without the index and with it ~0.4 ms for a 200-byte recipe, tens to hundreds of ms
for a 64 KiB one and hundreds of ms for 1 MiB (which the contract accepts), and a filter action
re-prioritising a million tasks would re-index every recipe. So the recipes are copied into
``task_recipe (task_id, project, recipe)``, indexed there, and kept in step by triggers on the
statements that can change them:

- ``AFTER INSERT`` (per statement, with a transition table): one ``INSERT … SELECT`` per submit,
  bulk submit or COPY, whatever code path inserted;
- ``AFTER UPDATE OF recipe, project`` (per row): a task edit or a move; a get, release, retry or
  priority change names neither column and fires nothing;
- ``AFTER DELETE`` (per statement, with a transition table): one set-based delete, cheaper than a
  foreign key's per-row cascade for a million deleted tasks.

Existing tasks are copied after the triggers exist (``ON CONFLICT DO NOTHING``: a task inserted
meanwhile is already there), then the index is built ``CONCURRENTLY``, so tasks stay writable. The
extension needs a role allowed to create it (a superuser, or the database owner on PostgreSQL 13+
since ``pg_trgm`` is trusted); the ``postgresql-contrib`` files must be installed (docs/DEPLOY.md).
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

TRIGGERS = """
CREATE FUNCTION tt_task_recipe_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO task_recipe (task_id, project, recipe) SELECT id, project, recipe FROM tt_new_tasks;
  RETURN NULL;
END $$;

CREATE FUNCTION tt_task_recipe_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO task_recipe (task_id, project, recipe) VALUES (NEW.id, NEW.project, NEW.recipe)
  ON CONFLICT (task_id) DO UPDATE SET project = EXCLUDED.project, recipe = EXCLUDED.recipe;
  RETURN NULL;
END $$;

CREATE FUNCTION tt_task_recipe_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM task_recipe r USING tt_old_tasks o WHERE r.task_id = o.id;
  RETURN NULL;
END $$;

CREATE TRIGGER tt_task_recipe_insert AFTER INSERT ON task REFERENCING NEW TABLE AS tt_new_tasks
  FOR EACH STATEMENT EXECUTE FUNCTION tt_task_recipe_insert();
CREATE TRIGGER tt_task_recipe_update AFTER UPDATE OF recipe, project ON task FOR EACH ROW
  WHEN (OLD.project <> NEW.project OR OLD.recipe IS DISTINCT FROM NEW.recipe)
  EXECUTE FUNCTION tt_task_recipe_update();
CREATE TRIGGER tt_task_recipe_delete AFTER DELETE ON task REFERENCING OLD TABLE AS tt_old_tasks
  FOR EACH STATEMENT EXECUTE FUNCTION tt_task_recipe_delete();
"""


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute("""CREATE TABLE task_recipe (
        task_id bigint PRIMARY KEY, project bigint NOT NULL, recipe text NOT NULL)""")
    op.execute("CREATE INDEX task_recipe_project ON task_recipe (project, task_id)")
    op.execute(TRIGGERS)
    with op.get_context().autocommit_block():
        op.execute("INSERT INTO task_recipe (task_id, project, recipe) SELECT id, project, recipe FROM task"
                   " ON CONFLICT (task_id) DO NOTHING")
        op.execute("CREATE INDEX CONCURRENTLY IF NOT EXISTS task_recipe_search ON task_recipe"
                   " USING gin (recipe gin_trgm_ops)")


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS tt_task_recipe_insert ON task")
    op.execute("DROP TRIGGER IF EXISTS tt_task_recipe_update ON task")
    op.execute("DROP TRIGGER IF EXISTS tt_task_recipe_delete ON task")
    op.execute("DROP FUNCTION IF EXISTS tt_task_recipe_insert(), tt_task_recipe_update(), tt_task_recipe_delete()")
    op.execute("DROP TABLE IF EXISTS task_recipe")
