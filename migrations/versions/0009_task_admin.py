"""task administration: the (project, id) index its listings page along

Revision ID: 0009
Revises: 0008

``GET /project/tasks/:id`` pages by task id within a project (``WHERE project = :p AND id > :after
ORDER BY id LIMIT n``, or descending): a range of this index read in order, so a page costs the
same at the end of a million tasks as at the start, with no sort and no offset scan. The bulk
actions of contract §6.8 lock their selection in the same order.
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("task_project_id", "task", ["project", "id"])


def downgrade() -> None:
    op.drop_index("task_project_id", table_name="task")
