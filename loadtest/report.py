"""Medians and ratios, the text table, the JSON file and the PNG chart."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

TARGETS = ("ours", "baseline", "theirs", "nginx")
OTHERS = TARGETS[1:]  # each gets a column and an ours/<other> ratio


def summarize(doc: dict, scenario_order: list[str]) -> list[dict]:
    """One row per (scenario, metric): medians over the ok runs of each target, ratios.

    `ours/baseline`, `ours/theirs` and `ours/nginx` are plain quotients of the medians
    (baseline: our registry from another checkout, --baseline-src); for metrics whose
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
                if entry.get("reason"):
                    notes.setdefault(target, set()).add(f"unsupported: {entry['reason']}")
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
            for other in OTHERS:
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


def _shown(rows: list[dict]) -> list[str]:
    """The other targets that took part: always docker-registry (the reference) and nginx
    unless no row mentions them, the baseline when there is one."""
    seen = {t for r in rows for t in r["status"]}
    return [t for t in OTHERS if t in seen or (t != "baseline" and not rows)]


def format_table(rows: list[dict], repeat: int, names: dict[str, str] | None = None) -> str:
    names = names or {}
    others = _shown(rows)
    head = ["scenario", "metric", names.get("ours", "ours")]
    for t in others:
        head += [names.get(t, t), f"ours/{t}"]
    body = []
    for r in rows:
        label = r["label"] + (" (lower is better)" if r["better"] == "lower" else "")
        cells = [r["scenario"], label, _cell(r, "ours")]
        for t in others:
            ratio = r["ratio"].get(f"ours/{t}")
            cells += [_cell(r, t), f"{ratio:.2f}" if ratio is not None else "-"]
        body.append(cells)
    widths = [max(len(x) for x in col) for col in zip(head, *body, strict=True)]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if i >= 2 else c.ljust(w)
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
    """Bar chart of ours/<other> for every row and other target; returns an error or None."""
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
    labels_of = {"baseline": "ours / baseline", "theirs": "ours / docker-registry",
                 "nginx": "ours / nginx"}
    series = [(t, [r["ratio"].get(f"ours/{t}", 0) for r in plotted]) for t in OTHERS]
    series = [(t, vals) for t, vals in series if any(vals)]
    h = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(10, 1.2 + 0.45 * len(plotted)))
    # Log scale, bars drawn from 1.0 to the ratio: 0.5x and 2x look equally far from "same".
    for i, (t, vals) in enumerate(series):
        offset = (i - (len(series) - 1) / 2) * h
        pos = [yy + offset for yy, v in zip(y, vals, strict=True) if v]
        got = [v for v in vals if v]
        ax.barh(pos, [v - 1 for v in got], h, left=1, label=labels_of[t])
        for yy, v in zip(pos, got, strict=True):
            ax.text(v, yy, f" {v:.2f} ", va="center", ha="left" if v >= 1 else "right", fontsize=8)
    every = [v for _, vals in series for v in vals if v]
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


def write_results(out_dir: Path, res: dict, text: str) -> None:
    """A harness's results.json and summary.txt in `out_dir`; the summary printed too."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(res, indent=1))
    (out_dir / "summary.txt").write_text(text + "\n")
    print(text)
    print(f"results: {out_dir}")
