"""``python -m bench.search_sql``: the recipe search's index strategies compared at SQL level.

Issue 12 ("Search that scales") asks for a case-insensitive recipe substring search over a
1,000,000-task project that answers fast without making submits, gets or releases slower. This
measures both sides for each strategy on one throwaway database (``tracker db upgrade``, then the
search index of migration 0010 dropped so every strategy starts from the same table):

- ``none``      no recipe index: the listing walks the project's ``(project, id)`` index;
- ``gin``       GIN ``gin_trgm_ops`` on ``task.recipe`` (``fastupdate = on``, the default);
- ``gin_nofu``  the same with ``fastupdate = off``;
- ``gist``      GiST ``gist_trgm_ops`` on ``task.recipe``;
- ``side``      no index on ``task``; a side table ``(task_id, project, recipe)`` with the GIN index,
                written by submit (and edit) only, so a get or release never touches it.

Per strategy: index build time and size; the first page of the listing (``ORDER BY id LIMIT 51``)
for a term in 0.1 % of the project's recipes, a term in none, a term in ~25 % and a 2-character
term (median of ``--runs``, and the plan's shape); ``COPY`` of ``--copy`` (10,000) rows into the
table with all its indexes; and the hot path: the two row updates of a worker cycle (assign, then
close: both non-HOT, since ``status`` and ``assignee`` are in partial index predicates) on tasks with
small (~200 B), 64 KiB and 1 MiB recipes. Large recipes are random lowercase alphanumerics (a
worst case for trigram count: ~46,000 distinct trigrams in 1 MiB).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import string
import sys
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.harness import migrated_database  # noqa: E402

BIG, OTHER, COPYP, LARGE = 1, 2, 3, 4
RARE, NONE, COMMON, TWO = "zebrafish", "quokka-lemur", "crawl", "zz"
STRATEGIES = ("none", "gin", "gin_nofu", "gist", "side")

# JSON-ish recipes of 100-300 characters; every 1,000th carries RARE, a quarter are "crawl" jobs.
RECIPE_SQL = """'{"job": "' || (ARRAY['crawl','parse','index','fetch'])[1 + g %% 4] ||
 '", "url": "https://example.org/item/' || g || '?ref=' || md5(g::text) ||
 '", "depth": ' || (g %% 7) || CASE WHEN g %% 1000 = 500 THEN ', "tag": "Zebrafish"' ELSE '' END ||
 ', "pad": "' || left(repeat(md5((g * 7)::text), 4), (g * 37) %% 150) || '"}'"""

LISTING = ("SELECT id, recipe FROM task WHERE project = %(p)s AND recipe ILIKE %(pat)s"
           " ORDER BY id LIMIT 51")
LISTING_SIDE = ("SELECT t.id, t.recipe FROM recipe_search s JOIN task t ON t.id = s.task_id"
                " WHERE s.project = %(p)s AND s.recipe ILIKE %(pat)s ORDER BY s.task_id LIMIT 51")
ASSIGN = ("UPDATE task SET assignee = 1, assign_time = 1, lease_deadline = now() + interval '1 hour'"
          " WHERE id = %s")
CLOSE = "UPDATE task SET status = 3, lease_deadline = NULL WHERE id = %s"
# The side table kept by triggers: a statement-level insert trigger (one INSERT … SELECT per COPY or
# submit statement) and a row trigger on the columns only an edit or a move changes.
SIDE_TRIGGERS = """
CREATE OR REPLACE FUNCTION recipe_search_ins() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO recipe_search SELECT id, project, recipe FROM new_rows; RETURN NULL; END $$;
CREATE OR REPLACE FUNCTION recipe_search_upd() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN UPDATE recipe_search SET project = NEW.project, recipe = NEW.recipe WHERE task_id = NEW.id;
RETURN NULL; END $$;
CREATE TRIGGER recipe_search_ins AFTER INSERT ON task REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION recipe_search_ins();
CREATE TRIGGER recipe_search_upd AFTER UPDATE OF recipe, project ON task
  FOR EACH ROW EXECUTE FUNCTION recipe_search_upd();
"""


def pct(xs: list[float], q: float) -> float:
    """Nearest-rank percentile in milliseconds (xs in seconds)."""
    s = sorted(xs)
    return round(1000 * s[min(len(s) - 1, max(0, int(round(q * len(s) + 0.5)) - 1))], 3) if s else None


def plan_shape(plan: dict) -> str:
    """The plan's node types and index names, outermost first: enough to see BitmapAnd or a walk."""
    out = []

    def walk(node: dict) -> None:
        name = node["Node Type"] + (f"({node['Index Name']})" if "Index Name" in node else "")
        out.append(name)
        for child in node.get("Plans", []):
            walk(child)

    walk(plan)
    return " > ".join(out)


def setup(conn: psycopg.Connection, tasks: int, other: int, log) -> None:
    conn.execute("INSERT INTO project (id, name, webhook_secret) VALUES (1, 'big', 'x'), (2, 'other', 'x'),"
                 " (3, 'copy', 'x'), (4, 'large', 'x')")
    conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    conn.execute("DROP INDEX IF EXISTS task_recipe_search")
    conn.execute("CREATE INDEX IF NOT EXISTS task_project_id ON task (project, id)")
    t0 = time.perf_counter()
    for project, n in ((OTHER, other // 2), (BIG, tasks), (OTHER, other - other // 2)):
        conn.execute(f"INSERT INTO task (project, recipe, max_assign_time) SELECT %s, {RECIPE_SQL}, 3600"
                     " FROM generate_series(1, %s) g", (project, n))
    log(f"  loaded {tasks + other:,} rows in {time.perf_counter() - t0:.1f} s")
    conn.execute("VACUUM (ANALYZE) task")
    conn.execute("CHECKPOINT")


def build(conn: psycopg.Connection, strategy: str) -> dict:
    conn.execute("SET maintenance_work_mem = '256MB'")
    t0 = time.perf_counter()
    if strategy == "gin":
        conn.execute("CREATE INDEX srch ON task USING gin (recipe gin_trgm_ops)")
    elif strategy == "gin_nofu":
        conn.execute("CREATE INDEX srch ON task USING gin (recipe gin_trgm_ops) WITH (fastupdate = off)")
    elif strategy == "gist":
        conn.execute("CREATE INDEX srch ON task USING gist (recipe gist_trgm_ops)")
    elif strategy == "side":
        conn.execute("CREATE TABLE recipe_search (task_id bigint PRIMARY KEY REFERENCES task ON DELETE CASCADE,"
                     " project bigint NOT NULL, recipe text NOT NULL)")
        conn.execute(SIDE_TRIGGERS)
        conn.execute("INSERT INTO recipe_search SELECT id, project, recipe FROM task")
        conn.execute("CREATE INDEX srch ON recipe_search USING gin (recipe gin_trgm_ops)")
        conn.execute("CREATE INDEX ON recipe_search (project, task_id)")
    seconds = time.perf_counter() - t0
    conn.execute("RESET maintenance_work_mem")
    conn.execute("VACUUM (ANALYZE) task")
    if strategy == "side":
        conn.execute("VACUUM (ANALYZE) recipe_search")
    size = conn.execute("SELECT coalesce(pg_relation_size(to_regclass('srch')), 0) / 1048576.0").fetchone()[0]
    return {"build_s": round(seconds, 1), "index_mb": round(float(size), 1)}


def drop(conn: psycopg.Connection, strategy: str) -> None:
    conn.execute("DROP INDEX IF EXISTS srch")
    conn.execute("DROP TRIGGER IF EXISTS recipe_search_ins ON task")
    conn.execute("DROP TRIGGER IF EXISTS recipe_search_upd ON task")
    conn.execute("DROP TABLE IF EXISTS recipe_search")


def queries(conn: psycopg.Connection, strategy: str, runs: int) -> dict:
    sql = LISTING_SIDE if strategy == "side" else LISTING
    out = {}
    for label, term in (("rare", RARE), ("none", NONE), ("common", COMMON), ("2-char", TWO)):
        params = {"p": BIG, "pat": f"%{term}%"}
        plan = conn.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params).fetchone()[0][0]
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            rows = conn.execute(sql, params).fetchall()
            times.append(time.perf_counter() - t0)
        out[label] = {"ms": round(1000 * statistics.median(times), 1), "rows": len(rows),
                      "plan": plan_shape(plan["Plan"])}
    return out


def copy_cost(conn: psycopg.Connection, strategy: str, n: int) -> dict:
    rows = [(COPYP, f'{{"job": "copy", "n": {i}, "url": "https://example.org/c/{i}?{i * 7919}"}}', 3600)
            for i in range(n)]
    t0 = time.perf_counter()
    with conn.transaction(), conn.cursor().copy("COPY task (project, recipe, max_assign_time) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    seconds = time.perf_counter() - t0
    conn.execute("DELETE FROM task WHERE project = %s", (COPYP,))
    return {"copy_s": round(seconds, 3), "rows_per_s": round(n / seconds)}


def large_tasks(conn: psycopg.Connection, seed: int) -> dict[str, list[int]]:
    """30 tasks with 64 KiB and 4 with 1 MiB random recipes, inserted (untimed) with the strategy's
    index in place; None when the index cannot take them (GiST: an index row is limited to 8 KiB)."""
    rnd = random.Random(seed)
    alphabet = string.ascii_lowercase + string.digits
    out = {}
    for label, size, n in (("64 KiB", 64 * 1024, 30), ("1 MiB", 1024 * 1024, 4)):
        recipes = ["".join(rnd.choices(alphabet, k=size)) for _ in range(n)]
        try:
            with conn.transaction():
                out[label] = [conn.execute("INSERT INTO task (project, recipe, max_assign_time) VALUES (%s, %s, 3600)"
                                           " RETURNING id", (LARGE, r)).fetchone()[0] for r in recipes]
        except psycopg.Error as exc:
            out[label] = f"insert refused: {str(exc).splitlines()[0]}"
    return out


def hot_path(conn: psycopg.Connection, strategy: str, ids: dict) -> dict:
    """Assign + close of each task, one autocommit statement each (the cycle's two row updates),
    with ``synchronous_commit = off`` so the commit's WAL flush does not hide the index work."""
    out = {}
    conn.execute("SET synchronous_commit = off")
    for label, task_ids in ids.items():
        if isinstance(task_ids, str):
            out[label] = {"error": task_ids}
            continue
        lat = []
        for task_id in task_ids:
            for sql in (ASSIGN, CLOSE):
                t0 = time.perf_counter()
                conn.execute(sql, (task_id,), prepare=True)
                lat.append(time.perf_counter() - t0)
        out[label] = {"updates": len(lat), "mean_ms": round(1000 * statistics.fmean(lat), 3),
                      "p50_ms": pct(lat, 0.5), "p99_ms": pct(lat, 0.99), "max_ms": pct(lat, 1.0)}
    conn.execute("RESET synchronous_commit")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.search_sql", description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", type=int, default=1_000_000, help="tasks in the searched project")
    p.add_argument("--other", type=int, default=200_000, help="tasks in another project")
    p.add_argument("--copy", type=int, default=10_000, help="rows per COPY")
    p.add_argument("--runs", type=int, default=5, help="runs per query (median)")
    p.add_argument("--small-updates", type=int, default=1000, help="small-recipe tasks cycled per strategy")
    p.add_argument("--strategies", default=",".join(STRATEGIES))
    p.add_argument("--out", type=Path, help="write the JSON here")
    args = p.parse_args(argv)

    def log(msg: str) -> None:
        print(msg, flush=True)

    results: dict = {"config": {k: str(v) for k, v in vars(args).items()}, "strategies": {}}
    with migrated_database("tt_search_") as url, psycopg.connect(url, autocommit=True) as conn:
        setup(conn, args.tasks, args.other, log)
        small = [r[0] for r in conn.execute("SELECT id FROM task WHERE project = %s ORDER BY id", (BIG,))]
        for k, strategy in enumerate(args.strategies.split(",")):
            log(f"== {strategy}")
            row = build(conn, strategy)
            log(f"  build {row['build_s']} s, {row['index_mb']} MB")
            row["query"] = queries(conn, strategy, args.runs)
            for label, q in row["query"].items():
                log(f"  q {label:<6}: {q['ms']:>8} ms  rows {q['rows']}  {q['plan']}")
            row["copy"] = copy_cost(conn, strategy, args.copy)
            log(f"  COPY {args.copy:,}: {row['copy']['copy_s']} s ({row['copy']['rows_per_s']:,} rows/s)")
            n = args.small_updates
            # fresh rows per strategy (a row closed by the previous one is no longer a queued task)
            ids = {"200 B": small[k * n * 3:(k * n * 3) + n], **large_tasks(conn, k)}
            row["hot_path"] = hot_path(conn, strategy, ids)
            for label, h in row["hot_path"].items():
                log(f"  update {label:<6}: " + (h["error"] if "error" in h else
                    f"mean {h['mean_ms']} ms  p50 {h['p50_ms']}  p99 {h['p99_ms']}  max {h['max_ms']}"
                    f" (n={h['updates']})"))
            conn.execute("DELETE FROM task WHERE project = %s", (LARGE,))
            drop(conn, strategy)
            conn.execute("VACUUM task")
            results["strategies"][strategy] = row
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
