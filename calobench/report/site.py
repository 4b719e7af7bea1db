"""The leaderboard website: ``calobench leaderboard site OUT/``.

A static, self-contained site (no network at view time; works from ``file://`` and any static
host): ``index.html`` lists the datasets; ``<dataset>.html`` holds the sortable ranked table
(curated rows and your own told apart), the published CaloChallenge 2022 rows of that dataset
(clearly marked: measured on the challenge's data, not on calobench's reference) and a
quality-vs-speed plot (AUC against CPU ms per shower, log x); ``entries/<dataset>/<id>.html``
has one entry's metrics, timing and provenance. Sorting is a few lines of inline JavaScript;
plots are embedded PNGs.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import shutil
from pathlib import Path

from calobench.errors import CalobenchError
from calobench.leaderboard.display import is_missing
from calobench.report.html import metric_flag

STYLE = ("body{font-family:sans-serif;margin:2em;max-width:1400px} table{border-collapse:collapse;margin:1em 0}"
         "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right} th{background:#eee;cursor:pointer}"
         "td.text,th.text{text-align:left} .curated{color:#064} .yours{color:#a40} .note{color:#555}"
         "tr.unranked td{color:#888}")

#: sort the table of id ``table`` by the clicked column: numeric where data-v is a number
SORT_SCRIPT = """
function sortBy(th){
  const table=th.closest('table'), body=table.tBodies[0], col=th.cellIndex;
  const asc=th.dataset.dir!=='asc'; th.dataset.dir=asc?'asc':'desc';
  const key=r=>{const v=r.cells[col].dataset.v; const n=parseFloat(v); return isNaN(n)?v:n;};
  const rows=Array.from(body.rows).sort((a,b)=>{const x=key(a),y=key(b);
    if(typeof x==='number'&&typeof y==='number') return asc?x-y:y-x;
    if(typeof x==='number') return -1; if(typeof y==='number') return 1;
    return asc?String(x).localeCompare(String(y)):String(y).localeCompare(String(x));});
  rows.forEach(r=>body.appendChild(r));
}
document.querySelectorAll('th[data-sort]').forEach(th=>th.addEventListener('click',()=>sortBy(th)));
"""

#: (header, metric or column, digits) of the ranked table
METRIC_COLUMNS = [("AUC low", "auc_low", 4), ("AUC high", "auc_high", 4), ("AUC xgb", "auc_high_xgb", 4),
                  ("FPD", "fpd", 3), ("KPD", "kpd", 3), ("sep E_tot/E_inc", "sep_etot_einc", 3),
                  ("G4-equivalent events", "g4_equivalent_events", 4)]
TIME_COLUMNS = [("cpu ms @1", "ms_cpu_bs1"), ("cpu ms @100", "ms_cpu_bs100"), ("cpu ms @10000", "ms_cpu_bs10000")]


def _num(value, digits: int = 4) -> str:
    return "" if is_missing(value) else f"{float(value):.{digits}g}"


def _cell(text: str, sort_value, css: str = "") -> str:
    v = "" if is_missing(sort_value) and not isinstance(sort_value, str) else sort_value
    return f"<td class='{css}' data-v='{html.escape(str(v), quote=True)}'>{text}</td>"


def _page(title: str, body: str, script: str = "") -> str:
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>{body}"
            + (f"<script>{script}</script>" if script else "") + "</body></html>")


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def quality_speed_plot(frame, published: list[dict]) -> str | None:
    """Base64 PNG of AUC (high and low) against CPU ms per shower at batch 100, log x; None when
    no entry has both numbers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = []
    for _, row in frame.iterrows():
        x = row.get("ms_cpu_bs100")
        for metric, marker in (("auc_high", "o"), ("auc_low", "s")):
            y = row.get(metric)
            if not is_missing(x) and not is_missing(y) and x > 0:
                points.append((float(x), float(y), marker, row["model"], row["source"]))
    pub = [(p["timing_ms_per_shower"]["cpu"]["100"], p["metrics"]["auc_high"]["value"], p["model"]) for p in published
           if not is_missing(p["timing_ms_per_shower"].get("cpu", {}).get("100")) and not is_missing(p["metrics"].get("auc_high", {})
                                                                                  .get("value"))]
    if not points and not pub:
        return None
    fig, ax = plt.subplots(figsize=(7.5, 5))
    for x, y, marker, model, source in points:
        ax.scatter(x, y, marker=marker, color="tab:green" if source == "curated" else "tab:orange")
        ax.annotate(model, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    for x, y, model in pub:
        ax.scatter(x, y, marker="x", color="tab:gray")
    ax.scatter([], [], marker="o", color="tab:green", label="AUC high (curated)")
    ax.scatter([], [], marker="s", color="tab:green", label="AUC low (curated)")
    ax.scatter([], [], marker="o", color="tab:orange", label="yours")
    if pub:
        ax.scatter([], [], marker="x", color="tab:gray", label="CaloChallenge 2022 (their data)")
    ax.axhline(0.5, color="black", lw=0.8, ls=":")
    ax.set_xscale("log")
    ax.set_xlabel("CPU ms per shower at batch 100")
    ax.set_ylabel("classifier AUC (0.5 = indistinguishable)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)


def _ranked_table(dataset: str, frame) -> str:
    head = ["rank", "source", "model", "family", "preset", "params"] + [h for h, _, _ in METRIC_COLUMNS] + \
        [h for h, _ in TIME_COLUMNS] + ["unranked: why", "date"]
    text_cols = {"source", "model", "family", "preset", "unranked: why", "date"}
    ths = "".join(f"<th data-sort class='{'text' if h in text_cols else ''}'>{html.escape(h)}</th>" for h in head)
    rows = []
    for _, row in frame.iterrows():
        link = f"entries/{html.escape(dataset)}/{html.escape(row['id'])}.html"
        cells = [_cell("-" if is_missing(row.get("rank")) else str(int(row["rank"])),
                       "" if is_missing(row.get("rank")) else int(row["rank"])),
                 _cell(f"<span class='{row['source']}'>{row['source']}</span>", row["source"], "text"),
                 _cell(f"<a href='{link}'>{html.escape(row['model'])}</a>", row["model"], "text"),
                 _cell(html.escape(str(row["family"])), row["family"], "text"),
                 _cell(html.escape(str(row["preset"])), row["preset"], "text"),
                 _cell(f"{int(row['parameters']):,}", int(row["parameters"]))]
        for _, name, digits in METRIC_COLUMNS:
            value, std, floor = row.get(name), row.get(f"{name}_std"), row.get(f"{name}_floor")
            text = _num(value, digits)
            if text and not is_missing(std) and std > 0:
                text += f" &plusmn; {std:.2g}"
            if text and not is_missing(floor):
                text += f" <span class='note'>[{floor:.{digits}g}]</span>"
            cells.append(_cell(text, value))
        for _, column in TIME_COLUMNS:
            value, threads = row.get(column), row.get("threads_cpu")
            text = _num(value, 3)
            if text and not is_missing(threads):
                text += f" <span class='note'>({int(threads)} thr)</span>"
            cells.append(_cell(text, value))
        cells.append(_cell(html.escape(str(row.get("unranked") or "")), str(row.get("unranked") or ""), "text"))
        cells.append(_cell(str(row["date"])[:10], str(row["date"]), "text"))
        css = "unranked" if is_missing(row.get("rank")) else ""
        rows.append(f"<tr class='{css}'>" + "".join(cells) + "</tr>")
    return (f"<table id='ranked'><thead><tr>{ths}</tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
            "<p class='note'>[floor]: the same metric for Geant4 against Geant4 (the reference's two halves). "
            "Times: CPU ms per shower with the torch thread count of the measurement. Click a header to sort.</p>")


def _published_table(rows: list[dict]) -> str:
    if not rows:
        return ""
    head = ["model", "params", "AUC low", "AUC high", "FPD", "KPD", "cpu ms @100", "gpu ms @100"]
    ths = "".join(f"<th data-sort>{h}</th>" for h in head)
    body = []
    for p in rows:
        m, t = p["metrics"], p["timing_ms_per_shower"]
        cells = [_cell(html.escape(p["model"]), p["model"], "text"),
                 _cell(_num(p.get("parameters"), 3), p.get("parameters"))]
        for name in ("auc_low", "auc_high", "fpd", "kpd"):
            value = m.get(name, {}).get("value")
            cells.append(_cell(_num(value, 4), value))
        for device in ("cpu", "gpu"):
            value = t.get(device, {}).get("100")
            cells.append(_cell(_num(value, 3), value))
        body.append("<tr>" + "".join(cells) + "</tr>")
    return ("<h2>Published: CaloChallenge 2022</h2><p class='note'>Measured by the challenge on its own data "
            "sets and hardware (arXiv:2410.21611), not on calobench's reference: shown for orientation, never "
            "ranked with the rows above.</p><table id='published'><thead><tr>" + ths + "</tr></thead><tbody>"
            + "".join(body) + "</tbody></table>")


def _entry_page(dataset: str, source: str, entry: dict) -> str:
    rows = "".join(
        f"<tr><td class='text'>{html.escape(name)}</td><td>{_num(m.get('value'), 5)}</td><td>{_num(m.get('std'), 3)}</td>"
        f"<td>{_num(m.get('floor'), 5)}</td><td class='text'>{html.escape(metric_flag(m))}</td></tr>"
        for name, m in entry["metrics"].items())
    timing = json.dumps(entry.get("timing", {}), indent=1, sort_keys=True)
    provenance = json.dumps(entry.get("provenance", {}), indent=1, sort_keys=True)
    body = (f"<p><a href='../../{html.escape(dataset)}.html'>&larr; {html.escape(dataset)}</a></p>"
            f"<h1>{html.escape(entry['model'])} ({html.escape(entry['preset'])}) on {html.escape(dataset)}</h1>"
            f"<p>source: <span class='{source}'>{source}</span>; id {html.escape(entry['id'])}; benchmark version "
            f"{html.escape(entry['benchmark_version'])}; {entry['parameters']:,} parameters</p>"
            "<h2>Metrics</h2><table id='metrics'><thead><tr><th class='text'>metric</th><th>value</th><th>&plusmn;</th>"
            "<th>floor</th><th class='text'>note</th></tr></thead><tbody>" + rows + "</tbody></table>"
            f"<h2>Timing</h2><pre>{html.escape(timing)}</pre><h2>Provenance</h2><pre>{html.escape(provenance)}</pre>")
    return _page(f"{entry['model']} on {dataset}", body)


def write_site(out_dir: str | Path, datasets: list[str] | None = None, user_dir: str | Path | None = None) -> Path:
    """Write the site into ``out_dir`` (created; its parent must exist); returns index.html's path.

    datasets: default every registered dataset; user_dir: your leaderboard folder (default as
    ``calobench leaderboard show``).
    """
    from calobench.datasets import dataset_names, get_dataset
    from calobench.leaderboard import published_rows, sourced_entries, table

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise CalobenchError(f"leaderboard site: {out} exists and is not a folder")
    if not out.parent.exists():
        raise CalobenchError(f"leaderboard site: {out}: folder {out.parent} does not exist")
    names = datasets or dataset_names()
    for name in names:
        get_dataset(name)
    # build into a sibling folder, then swap it in: a failure leaves the old site whole
    staging = out.with_name(f".{out.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        items = []
        for name in names:
            frame = table(name, user_dir=user_dir)
            published = published_rows(name)
            plot = quality_speed_plot(frame, published) if len(frame) or published else None
            counts = frame["source"].value_counts().to_dict() if len(frame) else {}
            body = (f"<p><a href='index.html'>&larr; all datasets</a></p><h1>{html.escape(name)}</h1>"
                    f"<p>{len(frame)} entries ({counts.get('curated', 0)} curated, {counts.get('yours', 0)} yours); "
                    f"ranked by ranking v2 (docs/leaderboard.md).</p>"
                    + (_ranked_table(name, frame) if len(frame) else "<p>No entries yet.</p>")
                    + (f"<h2>Quality against speed</h2><img alt='quality against speed' "
                       f"src='data:image/png;base64,{plot}'/>" if plot else "")
                    + _published_table(published))
            _write(staging / f"{name}.html", _page(f"calobench leaderboard: {name}", body, SORT_SCRIPT))
            entry_dir = staging / "entries" / name
            entry_dir.mkdir(parents=True)
            for source, entry in sourced_entries(name, user_dir):
                _write(entry_dir / f"{entry['id']}.html", _entry_page(name, source, entry))
            items.append(f"<li><a href='{html.escape(name)}.html'>{html.escape(name)}</a>: {len(frame)} entries"
                         + (", published CaloChallenge rows" if published else "") + "</li>")
        _write(staging / "index.html", _page("calobench leaderboards", "<h1>calobench leaderboards</h1><ul>"
                                             + "".join(items) + "</ul>"))
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.replace(out, old)
            os.replace(staging, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out / "index.html"
