"""Medians and ratios, the text table, the JSON file and the PNG chart."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

TARGETS = ("ours", "theirs", "nginx")


def summarize(doc: dict, scenario_order: list[str]) -> list[dict]:
    """One row per (scenario, metric): medians over the ok runs of each target, ratios.

    `ours/theirs` and `ours/nginx` are plain quotients of the medians; for metrics whose
    `better` is "lower" (RSS, milliseconds) a ratio above 1 means ours is worse.
    """
    rows: list[dict] = []
    for name in scenario_order:
        values: dict[tuple[str, str], dict[str, list[float]]] = {}
        meta: dict[str, dict] = {}
        status: dict[str, str] = {}
        errors: dict[str, list[str]] = {}
        notes: dict[str, set[str]] = {}
        for run in doc.get("runs", []):
            entry = run.get("scenarios", {}).get(name)
            target = run["target"]
            if entry is None:
                if "error" in run and name in run.get("planned", []):  # server did not start
                    errors.setdefault(target, []).append(run["error"])
                    status.setdefault(target, "error")
                continue
            st = entry.get("status", "error")
            if st == "interrupted":
                continue
            if entry.get("note"):
                notes.setdefault(target, set()).add(entry["note"])
            if st == "ok":
                for m in entry["metrics"]:
                    meta.setdefault(m["key"], m)
                    values.setdefault((m["key"], target), []).append(m["value"])
                status.setdefault(target, "ok")
            elif st == "unsupported":
                status[target] = "unsupported"
            else:
                errors.setdefault(target, []).append(entry.get("error", "?"))
                status.setdefault(target, "error")
        if not meta:  # nothing measured anywhere: still one row saying why
            meta = {"-": {"key": "-", "label": "-", "unit": "", "better": "higher"}}
        for key, m in meta.items():
            row: dict = {
                "scenario": name,
                "metric": key,
                "label": m["label"],
                "unit": m["unit"],
                "better": m["better"],
                "chart": m.get("chart", True),
                "runs": {},
                "median": {},
                "status": {},
                "ratio": {},
            }
            for t in TARGETS:
                vals = values.get((key, t), [])
                if vals:
                    row["median"][t] = statistics.median(vals)
                    row["runs"][t] = vals
                    row["status"][t] = "ok"
                elif t in status:
                    row["status"][t] = status[t] if status[t] != "ok" else "error"
            if t_err := {t: e for t, e in errors.items() if e}:
                row["errors"] = t_err
            if notes:
                row["notes"] = {t: sorted(n) for t, n in notes.items()}
            med = row["median"]
            for other in ("theirs", "nginx"):
                if "ours" in med and med.get(other):
                    row["ratio"][f"ours/{other}"] = med["ours"] / med[other]
            rows.append(row)
    return rows


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.1f}"
    return f"{value:.3g}" if value < 10 else f"{value:.2f}"


def _cell(row: dict, target: str) -> str:
    if target in row["median"]:
        return _fmt(row["median"][target])
    return row["status"].get(target, "-")


def format_table(rows: list[dict], repeat: int, names: dict[str, str] | None = None) -> str:
    names = names or {}
    head = [
        "scenario",
        "metric",
        names.get("ours", "ours"),
        names.get("theirs", "theirs"),
        "ours/theirs",
        names.get("nginx", "nginx"),
        "ours/nginx",
    ]
    body = []
    for r in rows:
        label = r["label"] + (" (lower is better)" if r["better"] == "lower" else "")
        ratio_t = r["ratio"].get("ours/theirs")
        ratio_n = r["ratio"].get("ours/nginx")
        body.append(
            [
                r["scenario"],
                label,
                _cell(r, "ours"),
                _cell(r, "theirs"),
                f"{ratio_t:.2f}" if ratio_t is not None else "-",
                _cell(r, "nginx"),
                f"{ratio_n:.2f}" if ratio_n is not None else "-",
            ]
        )
    widths = [max(len(x) for x in col) for col in zip(head, *body, strict=True)]
    right = {2, 3, 4, 5, 6}

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    out = [f"medians of {repeat} run(s); ratios are ours divided by the other", line(head)]
    out.append(line(["-" * w for w in widths]))
    out += [line(b) for b in body]
    seen = set()
    for r in rows:
        if r.get("notes") and r["scenario"] not in seen:
            seen.add(r["scenario"])
            per = "; ".join(f"{names.get(t, t)}: {', '.join(n)}" for t, n in r["notes"].items())
            out.append(f"  note {r['scenario']}: {per}")
        for t, errs in r.get("errors", {}).items():
            if (r["scenario"], t) not in seen:
                seen.add((r["scenario"], t))
                out.append(f"  error {r['scenario']} {names.get(t, t)}: {errs[0][:200]}")
    return "\n".join(out)


def write_json(path: Path, doc: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=False, default=str) + "\n")
    tmp.replace(path)


def write_chart(path: Path, rows: list[dict], title: str) -> str | None:
    """Bar chart of ours/theirs and ours/nginx for every row; returns an error or None."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install matplotlib): no chart written"
    plotted = [r for r in rows if r["ratio"] and r.get("chart", True)]
    if not plotted:
        return "no ratio to plot"
    labels = []
    for r in plotted:
        suffix = " (lower is better)" if r["better"] == "lower" else ""
        labels.append(f"{r['scenario']}: {r['label']}{suffix}")
    y = list(range(len(plotted)))
    h = 0.38
    fig, ax = plt.subplots(figsize=(10, 1.2 + 0.45 * len(plotted)))
    theirs = [r["ratio"].get("ours/theirs", 0) for r in plotted]
    nginx = [r["ratio"].get("ours/nginx", 0) for r in plotted]
    # Log scale, bars drawn from 1.0 to the ratio: 0.5x and 2x look equally far from "same".
    for offset, vals, label in (
        (-h / 2, theirs, "ours / docker-registry"),
        (h / 2, nginx, "ours / nginx"),
    ):
        pos = [i + offset for i, v in zip(y, vals, strict=True) if v]
        got = [v for v in vals if v]
        if not got:
            continue
        ax.barh(pos, [v - 1 for v in got], h, left=1, label=label)
        for yy, v in zip(pos, got, strict=True):
            ax.text(v, yy, f" {v:.2f} ", va="center", ha="left" if v >= 1 else "right", fontsize=8)
    every = [v for v in theirs + nginx if v]
    ax.set_xscale("log")
    ax.set_xlim(min([*every, 1]) / 2, max([*every, 1]) * 2)
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("ratio of medians, ours / other (log scale); 1.0 = same")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None
