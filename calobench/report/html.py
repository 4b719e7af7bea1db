"""Write a self-contained HTML report of a Result (every image embedded as base64 PNG)."""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
from pathlib import Path

from calobench.errors import CalobenchError

#: At most this many feature histograms are drawn (headline features first).
MAX_HISTOGRAMS = 60


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _chosen_features(names: list[str]) -> list[str]:
    first = [n for n in names if not any(n.startswith(p) for p in
                                         ("e_layer_", "ec_", "width_", "sparsity_"))]
    per_layer = [n for n in names if n not in first]
    room = max(MAX_HISTOGRAMS - len(first), 0)
    stride = max(1, math.ceil(len(per_layer) / room)) if room else len(per_layer) + 1
    return first + per_layer[::stride][:room]


def metric_flag(metric: dict) -> str:
    """What a reader must know about a value: failed, unreliable, or within its floor."""
    if metric.get("failed"):
        return f"failed: {metric['failed']}"
    if metric.get("unreliable"):
        return f"unreliable: {metric['unreliable']}"
    if metric.get("within_floor"):
        return "within floor"
    return ""


def _metric_rows(rows: list[dict], metrics: dict) -> str:
    def fmt(v) -> str:
        return "" if v is None or not math.isfinite(v) else f"{v:.5g}"

    return "".join(
        f"<tr><td class='text'>{html.escape(r['name'])}</td><td>{fmt(r['value'])}</td><td>{fmt(r['std'])}</td>"
        f"<td>{fmt(r['floor'])}</td><td class='text'>{html.escape(r['direction'] or '')}</td>"
        f"<td class='text'>{html.escape(metric_flag(metrics[r['name']]))}</td>"
        f"<td class='text'>{html.escape(r['description'] or '')}</td></tr>" for r in rows)


_HEAD = ("<tr><th class='text'>metric</th><th>value</th><th>&plusmn;</th><th>floor (ref vs ref)</th>"
         "<th class='text'>better</th><th class='text'>note</th><th class='text'>definition</th></tr>")


def _metric_tables(result) -> str:
    """The headline metrics in one table, every other metric in a folded section per stage
    (each row: value, uncertainty, floor, direction, flag, one-line definition)."""
    head = result.rows(full=False)
    shown = {r["name"] for r in head}
    out = ["<h2>Metrics</h2><table id='headline'>", _HEAD, _metric_rows(head, result.metrics), "</table>"]
    by_stage: dict[str, list[dict]] = {}
    for r in result.rows(full=True):
        if r["name"] not in shown:
            by_stage.setdefault(r["stage"] or "other", []).append(r)
    for stage, rows in by_stage.items():
        out.append(f"<details class='stage' data-stage='{html.escape(stage)}'><summary>{html.escape(stage)}: "
                   f"{len(rows)} more metrics</summary><table>{_HEAD}{_metric_rows(rows, result.metrics)}</table>"
                   "</details>")
    return "".join(out)


def write_report(result, out_dir: str | Path) -> Path:
    """Write ``out_dir/report.html`` (folder created if its parent exists); returns its path."""
    from calobench.datasets import get_geometry
    from calobench.report import plots

    out_dir = Path(out_dir)
    if not out_dir.parent.exists():
        raise CalobenchError(f"{out_dir}: folder {out_dir.parent} does not exist")
    out_dir.mkdir(exist_ok=True)
    plots.use_style()
    geometry = get_geometry(result.info["geometry"])
    sections = []
    sections.append(_metric_tables(result))
    images = []
    if result.averages.get("generated") is not None and geometry.is_voxel:
        images.append(("Average showers", _png(plots.average_showers(
            geometry, result.averages["generated"], result.averages["reference"]))))
    if "gen" in result.response and "ref" in result.response:
        fits = {}
        for label in ("gen", "ref"):
            fits[label] = {p: result.metrics.get(f"resolution_{p}_{label}", {}).get("value", float("nan"))
                           for p in ("a", "b", "c")}
        images.append(("Energy response and resolution", _png(plots.response_resolution(result.response, fits))))
        views = result.response.get("per_energy") or []
        if any(v["histograms"] is not None for v in views):
            images.append(("E_tot / E_inc in bins of incident energy", _png(plots.per_energy(views))))
    for name, views in (result.response.get("per_energy_shapes") or {}).items():
        if any(v["histograms"] is not None for v in views):
            images.append((f"{name} in bins of incident energy", _png(plots.per_energy(views, name))))
    drawable = [name for name, h in result.histograms.items() if not ("display" in h and h["display"] is None)]
    for name in _chosen_features(drawable):
        h = result.histograms[name]
        sep = result.metrics.get(f"sep_{name}", {}).get("value")
        shown = h.get("display") or h  # display edges cover both samples; spectra keep the metric's bins
        outside = {k: v for k, v in shown.items() if k.endswith(("_underflow", "_overflow"))}
        data = {"edges": list(map(float, shown["edges"])), "generated": list(map(float, shown["generated"])),
                "reference": list(map(float, shown["reference"])), **outside}
        images.append((name, _png(plots.feature_histogram(name, shown["edges"], shown["generated"], shown["reference"],
                                                          sep, log_x=shown.get("log_x"), outside=outside)), data))
    figures = []
    for title, b64, *data in images:
        attrs = (f" data-feature='{html.escape(title, quote=True)}' data-hist='{html.escape(json.dumps(data[0]), quote=True)}'"
                 if data else "")
        figures.append(f"<figure{attrs}><img alt='{html.escape(title, quote=True)}' src='data:image/png;base64,{b64}'/>"
                       f"<figcaption>{html.escape(title)}</figcaption></figure>")
    sections.append("<h2>Plots</h2>" + "".join(figures))
    info = result.info
    stages = "".join(f"<tr><td>{html.escape(k)}</td><td>{v['seconds']:.1f}</td><td>{html.escape(v['holds'])}</td></tr>"
                     for k, v in info.get("stages", {}).items())
    sections.append("<h2>Stages</h2><table><tr><th>stage</th><th>seconds</th><th>holds</th></tr>"
                    f"{stages}</table><p>{html.escape('; '.join(info.get('notes', [])))}</p>")
    page = ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>calobench compare</title><style>"
            "body{font-family:sans-serif;margin:2em} table{border-collapse:collapse} td,th{border:1px solid #ccc;"
            "padding:2px 8px;text-align:right} td.text,th.text{text-align:left} figure{display:inline-block;margin:4px} img{max-width:640px}"
            "</style></head><body>"
            f"<h1>calobench compare: {html.escape(info['geometry'])}</h1>"
            f"<p>events: generated {info['events']['generated']}, reference {info['events']['reference']}; "
            f"seed {info['seed']}</p>" + "".join(sections) + "</body></html>")
    path = out_dir / "report.html"
    tmp = out_dir / f".report.html.partial-{os.getpid()}"
    tmp.write_text(page)
    os.replace(tmp, path)
    return path
