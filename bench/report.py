"""Output: the printed tables, the JSON record and one PNG of plots (matplotlib, Agg backend)."""

from __future__ import annotations

import json
from pathlib import Path

from bench.cpu import PG_OTHER, RABBIT


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.1f}" if abs(v) >= 100 else f"{v:.2f}" if abs(v) >= 1 else f"{v:.3f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def table(title: str, headers: list[str], rows: list[list], left: tuple[int, ...] = (0,)) -> str:
    """A plain-text table; columns in ``left`` are left-aligned, the others right-aligned."""
    cells = [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]

    def line(values: list[str]) -> str:
        return "  ".join(v.ljust(w) if i in left else v.rjust(w) for i, (v, w) in enumerate(zip(values, widths,
                                                                                              strict=True))).rstrip()

    return "\n".join([f"\n{title}", line(headers), "  ".join("-" * w for w in widths), *(line(r) for r in cells)])


def _ratio(a, b):
    return round(a / b, 4) if a and b else None


def stack_at(results: dict, workers: int) -> dict | None:
    for row in results.get("cycle", {}).get("levels", []):
        if row["workers"] == workers:
            return row
    return None


def render(results: dict) -> str:
    meta = results["meta"]
    run = " ".join(meta["run_args"]) or "(defaults)"
    parts = [f"task_tracker benchmark {meta['stamp']}  ({'quick' if meta['quick'] else 'full'};"
             f" rev {meta['git_rev']}; {meta['cores']} cores; tracker run {run};"
             f" {meta.get('queue_type', 'quorum')} service queues)",
             f"PostgreSQL: {meta.get('postgres', {})}"]
    if "cycle" in results:
        c = results["cycle"]
        rows = []
        for r in c["levels"]:
            p = r.get("cpu_pct", {})
            rows.append([r["workers"], r["cycles_per_s"], r["get_ms"]["p50"], r["get_ms"]["p99"],
                         r["release_ms"]["p50"], r["release_ms"]["p99"], r["non_200"], r["errors"], r["no_task"],
                         p.get("tracker"), p.get("postgres"), p.get("rabbitmq"), p.get("load"),
                         r.get("load_share_of_busy_pct"), p.get("machine_busy")])
        parts.append(table(
            f"1. Worker cycle: GET /task/get + POST /task/release OK, {c['queued_tasks']:,} queued, "
            f"{c['duration_s']} s per level (latency ms; CPU % of one core)",
            ["workers", "cycles/s", "get p50", "get p99", "rel p50", "rel p99", "non-200", "errors", "no-task",
             "tracker%", "pg%", "rabbit%", "load%", "load/busy%", "busy%"], rows))
    if "floor" in results:
        f = results["floor"]
        stack = stack_at(results, f["connections"])
        rows = []
        if stack:
            rows.append([f"stack (HTTP), {f['connections']} workers", stack["cycles_per_s"], stack["get_ms"]["p50"],
                         stack["get_ms"]["p99"], stack["get_ms"].get("mean"), stack["release_ms"]["p50"],
                         stack["release_ms"]["p99"], stack.get("cpu_pct", {}).get("load"),
                         stack.get("cpu_pct", {}).get("machine_busy"), "1.00"])
        for m in f["modes"]:
            rows.append([f"floor {m['mode']}, {m['connections']} conns", m["cycles_per_s"], m["get_ms"]["p50"],
                         m["get_ms"]["p99"], m["get_ms"].get("mean"), m["release_ms"]["p50"], m["release_ms"]["p99"],
                         m.get("cpu_pct", {}).get("load"), m.get("cpu_pct", {}).get("machine_busy"),
                         _ratio(stack["cycles_per_s"], m["cycles_per_s"]) if stack else None])
        parts.append(table(f"2. Storage floor: direct SQL on the same table, own project with {f['queued_tasks']:,} "
                           "queued (assign/close ms)",
                           ["run", "cycles/s", "assign p50", "assign p99", "assign mean", "close p50", "close p99",
                            "load%", "busy%", "stack/floor"], rows))
    if "bulk" in results:
        b = results["bulk"]
        rows = [[r["method"], r["requests"], r["submitted"], r["seconds"], r["tasks_per_s"], r["request_ms"]["p50"],
                 r["request_ms"]["max"], r["non_200"] + r["errors"], r["ratio_to_copy"]] for r in b["runs"]]
        cp = b["copy"]
        rows.append(["COPY (direct)", 1, cp["rows"], cp["seconds"], cp["tasks_per_s"], None, None, 0, 1.0])
        parts.append(table(f"3. Bulk submit: {b['tasks']:,} tasks",
                           ["method", "requests", "stored", "seconds", "tasks/s", "req p50 ms", "req max ms",
                            "non-200", "vs COPY"], rows))
    if "growth" in results:
        g = results["growth"]
        rows = [[s["queued"], s["other_rows"], s["table_rows"], s["table_mb"], s["pick"]["buffers"],
                 s["pick"]["exec_ms"], s["get_ms"]["n"], s["get_ms"]["p50"], s["get_ms"]["p99"],
                 s["release_ms"]["p50"], s["release_ms"]["p99"], s["non_200"], s["load_s"], s["vacuum_s"]]
                for s in g["steps"]]
        parts.append(table("4. Queue growth: one worker, sequential cycles (ms)",
                           ["queued", "other rows", "task rows", "table MB", "pick bufs", "pick ms", "n",
                            "get p50", "get p99", "rel p50", "rel p99", "non-200", "load s", "vacuum s"], rows))
    parts += _where(results)
    if "replicas" in results:
        rp = results["replicas"]
        rows = [[r["task_svc"], r["cycles_per_s"], r["get_ms"]["p50"], r["get_ms"]["p99"], r["release_ms"]["p50"],
                 r["release_ms"]["p99"], r["non_200"], r["errors"], r.get("cpu_pct", {}).get("tracker"),
                 r.get("cpu_pct", {}).get("machine_busy")] for r in rp["runs"]]
        parts.append(table(f"5b. task_svc replicas: {rp['workers']} workers, one fresh system each",
                           ["task_svc", "cycles/s", "get p50", "get p99", "rel p50", "rel p99", "non-200", "errors",
                            "tracker%", "busy%"], rows))
    if "stats" in results:
        st = results["stats"]
        rows = [[r["statistics"], r["reltuples"], r["mod_since_analyze"], r["cycles_per_s"], r["get_ms"]["p50"],
                 r["get_ms"]["p99"], r["release_ms"]["p50"], r["release_ms"]["p99"], r["non_200"], r["errors"],
                 r.get("cpu_pct", {}).get("postgres"), r.get("cpu_pct", {}).get("machine_busy")] for r in st["runs"]]
        parts.append(table(f"6. Statistics: {st['workers']} workers on a project of {st['tasks']:,} bulk-loaded"
                           f" tasks ({st['other_tasks']:,} in another project); ratio {st['ratio']}",
                           ["statistics", "reltuples", "mod since", "cycles/s", "get p50", "get p99", "rel p50",
                            "rel p99", "non-200", "errors", "pg%", "busy%"], rows))
    if "admin" in results:
        parts += _admin(results["admin"])
    return "\n".join(parts)


def _admin(a: dict) -> list[str]:
    """Part 7: search latency, bulk vs COPY, and the fleet around a filter action."""
    rows = [[f"q={s['term']!r}", s["rows"], s["n"], s["p50"], s["p95"], s["max"], s["codes"]] for s in a["search"]]
    out = [table(f"7a. Search: first page of GET /project/tasks?q= on {a['tasks']:,} tasks"
                 " (ms; targets p50 <= 200 for 0.1 %, <= 500 for no match)",
                 ["query", "rows", "n", "p50", "p95", "max", "codes"], rows)]
    b = a["bulk"]
    out.append(table("7b. Bulk submit (10,000-task bulks) vs COPY into the same table (target >= 0.5)",
                     ["tasks", "bulk tasks/s", "COPY tasks/s", "vs COPY", "non-200"],
                     [[b["submitted"], b["tasks_per_s"], b["copy_tasks_per_s"], b["ratio_to_copy"],
                       b["non_200"] + b["errors"]]]))
    alone = a["action_alone"]
    rows = [[f["fleet"], "action" if f["during_action"] else "control", f["cycles_per_s"], f["get_ms"]["p50"],
             f["get_ms"]["p99"], f["release_ms"]["p99"], f["non_200"], f["errors"], f["no_task"],
             f.get("action", {}).get("seconds"), f.get("overlap")] for f in a["fleets"]]
    out.append(table(f"7c. Filter action update_tasks {{filter: {{}}, priority}} over {a['tasks']:,} tasks: alone"
                     f" {alone.get('seconds')} s ({alone.get('status')}, {alone.get('affected_tasks')} affected);"
                     f" 16 workers, {a['window_s']} s windows (get p99 target <= 100 ms on another project)",
                     ["fleet on", "window", "cycles/s", "get p50", "get p99", "rel p99", "non-200", "errors",
                      "no-task", "action s", "overlap"], rows))
    return out


def _where_columns(results: dict) -> list[tuple[str, dict]]:
    cols = []
    level = results["meta"]["where_level"]
    stack = stack_at(results, level)
    if stack and "cpu_s_per_1k_cycles" in stack:
        cols.append((f"cycle {level}w", stack))
    for r in results.get("replicas", {}).get("runs", []):
        if "cpu_s_per_1k_cycles" in r:
            cols.append((f"task_svc={r['task_svc']}", r))
    return cols


def _where(results: dict) -> list[str]:
    out = []
    cols = _where_columns(results)
    if cols:
        groups: list[str] = []
        for _, r in cols:
            groups += [g for g in r["cpu_s_per_1k_cycles"] if g not in groups]
        first = cols[0][1]["cpu_s_per_1k_cycles"]
        order = sorted(groups, key=lambda g: (g in (PG_OTHER, "unattributed"), -first.get(g, 0)))
        rows = [[g, *(r["cpu_s_per_1k_cycles"].get(g) for _, r in cols)] for g in order
                if any(r["cpu_s_per_1k_cycles"].get(g) for _, r in cols)]
        rows.append(["total", *(round(sum(v for k, v in r["cpu_s_per_1k_cycles"].items() if k != PG_OTHER), 3)
                                for _, r in cols)])
        rows.append(["(cycles/s)", *(r["cycles_per_s"] for _, r in cols)])
        note = (f"'{PG_OTHER}' = server background processes and other databases' backends, "
                f"'{RABBIT}' = every beam.smp (all vhosts), 'unattributed' = rest of the machine's busy time; "
                "total excludes postgres: other")
        out += [table("5. Where time goes: CPU seconds per 1,000 cycles by process group",
                      ["group", *(c for c, _ in cols)], rows), note]
    runs = [*cols, *((f"floor {m['mode']}", m) for m in results.get("floor", {}).get("modes", []))]
    waits = [[label, ", ".join(f"{k} {v}" for k, v in r["cpu"]["pg_busy_backends"].items()) or "idle"]
             for label, r in runs if r.get("cpu", {}).get("pg_busy_backends") is not None]
    if waits:
        out.append(table("5c. PostgreSQL: average busy backends of this database by wait event (sampled every 50 ms)",
                         ["run", "state/wait: backends"], waits, left=(0, 1)))
    return out


def _workers_axes(ax, xs: list, ylabel: str, title: str) -> None:
    """Log-log axes over the worker levels, as every per-level plot draws them."""
    ax.set_xscale("log", base=2)
    ax.set_xticks(xs, [str(x) for x in xs])
    ax.set_yscale("log")
    ax.set_xlabel("concurrent workers")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5))
    (a1, a2, a3), (a4, a5, a6) = axes
    levels = results.get("cycle", {}).get("levels", [])
    if levels:
        xs = [r["workers"] for r in levels]
        a1.plot(xs, [r["cycles_per_s"] for r in levels], "o-", label="stack (HTTP)")
        for m in results.get("floor", {}).get("modes", []):
            a1.axhline(m["cycles_per_s"], ls="--", color="grey" if m["mode"] == "bare" else "tab:green",
                       label=f"floor {m['mode']} ({m['connections']} conns)")
        _workers_axes(a1, xs, "cycles/s", "1-2. Cycle throughput vs storage floor")
        for key, style in (("get_ms", "-"), ("release_ms", "--")):
            for q, colour in (("p50", "tab:blue"), ("p99", "tab:red")):
                a2.plot(xs, [r[key][q] for r in levels], style, color=colour, marker="o", label=f"{key[:-3]} {q}")
        _workers_axes(a2, xs, "ms", "1. Latency")
    else:
        for ax in (a1, a2):
            ax.text(0.5, 0.5, "cycle part not run", ha="center")
    cols = _where_columns(results)
    if cols:  # attributed groups only: "unattributed" (other users of the machine) is in the table
        groups = {g for _, r in cols for g, v in r["cpu_s_per_1k_cycles"].items()
                  if v and g not in (PG_OTHER, "unattributed")}
        groups = sorted(groups, key=lambda g: -cols[0][1]["cpu_s_per_1k_cycles"].get(g, 0))
        colours = plt.get_cmap("tab20").colors
        bottom = [0.0] * len(cols)
        for i, g in enumerate(groups):
            vals = [r["cpu_s_per_1k_cycles"].get(g, 0.0) for _, r in cols]
            a3.bar([c for c, _ in cols], vals, bottom=bottom, label=g, color=colours[i % len(colours)])
            bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
        a3.set_ylabel("CPU s per 1,000 cycles")
        a3.set_title("5. Where time goes (attributed CPU)")
        a3.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    else:
        a3.text(0.5, 0.5, "no CPU data", ha="center")
    bulk = results.get("bulk")
    if bulk:
        names = [r["method"].removeprefix("bulk_submit ").replace(" clients", "c") for r in bulk["runs"]] + ["COPY"]
        a4.bar(names, [r["tasks_per_s"] or 0 for r in bulk["runs"]] + [bulk["copy"]["tasks_per_s"]],
               color=["tab:blue"] * len(bulk["runs"]) + ["grey"])
        a4.set_ylabel("tasks/s")
        a4.set_title(f"3. Bulk submit ({bulk['tasks']:,} tasks)")
    else:
        a4.text(0.5, 0.5, "bulk part not run", ha="center")
    growth = results.get("growth")
    if growth:
        xs = [s["queued"] for s in growth["steps"]]
        for key, q, style in (("get_ms", "p50", "o-"), ("get_ms", "p99", "o--"), ("release_ms", "p50", "s-")):
            a5.plot(xs, [s[key][q] for s in growth["steps"]], style, label=f"{key[:-3]} {q}")
        a5.set_xscale("log")
        a5.set_xlabel("queued tasks in the project")
        a5.set_ylabel("ms")
        a5.set_title("4. Queue growth (one worker)")
        a5.legend(fontsize=8)
    else:
        a5.text(0.5, 0.5, "growth part not run", ha="center")
    reps = results.get("replicas")
    if reps:
        a6.bar([f"task_svc={r['task_svc']}" for r in reps["runs"]], [r["cycles_per_s"] for r in reps["runs"]])
        a6.set_ylabel("cycles/s")
        a6.set_title(f"5b. Replicas ({reps['workers']} workers)")
    else:
        a6.text(0.5, 0.5, "replicas part not run", ha="center")
    meta = results["meta"]
    fig.suptitle(f"task_tracker bench {meta['stamp']} ({'quick' if meta['quick'] else 'full'}, rev {meta['git_rev']},"
                 f" {meta['cores']} cores)")
    fig.tight_layout()
    fig.savefig(path, dpi=60)
    plt.close(fig)


def write(results: dict, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    suffix = "-quick" if results["meta"]["quick"] else ""
    stamped = out_dir / f"{results['meta']['stamp']}{suffix}.json"
    latest = out_dir / f"latest{suffix}.json"
    text = json.dumps(results, indent=1, sort_keys=False) + "\n"
    stamped.write_text(text)
    latest.write_text(text)
    png = out_dir / f"latest{suffix}.png"
    plot(results, png)
    return [stamped, latest, png]

