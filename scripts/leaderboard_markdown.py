"""Print the ranked leaderboards (current benchmark version) as Markdown tables, for the README.

usage: python scripts/leaderboard_markdown.py [DATASET ...] [--dir leaderboards]
"""

from __future__ import annotations

import argparse

from calobench.datasets import dataset_names
from calobench.leaderboard import benchmark_version, rank, read_leaderboard


def _value(metric: dict | None, digits: int = 3) -> str:
    if not metric or metric.get("value") is None:
        return ""
    text = f"{metric['value']:.{digits}g}"
    if metric.get("std"):
        text += f" ± {metric['std']:.1g}"
    return text


def _ms(entry: dict, batch: str) -> str:
    t = entry["timing"]["devices"].get("cpu", {}).get("batches", {}).get(batch)
    if not t:
        return ""
    return "skipped" if "skipped" in t else f"{t['ms_per_shower']:.3g}"


def markdown(dataset: str, directory: str) -> str:
    current = benchmark_version(dataset)
    ranked, _ = rank(read_leaderboard(directory, dataset)["entries"], current)
    lines = [f"**{dataset}** (`{current}`; CPU ms per shower, one thread)", "",
             "| rank | model | family | params | AUC high | AUC low | FPD | sep E_tot/E_inc | ms @1 | ms @100 | ms @10000 |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r, e in ranked:
        m = e["metrics"]
        lines.append(f"| {r} | {e['model']} | {e['family']} | {e['parameters']:,} | {_value(m.get('auc_high'))} | "
                     f"{_value(m.get('auc_low'))} | {_value(m.get('fpd'))} | {_value(m.get('sep_etot_einc'))} | "
                     f"{_ms(e, '1')} | {_ms(e, '100')} | {_ms(e, '10000')} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", nargs="*")
    parser.add_argument("--dir", default="leaderboards")
    args = parser.parse_args()
    names = args.datasets or [d for d in dataset_names()]
    for name in names:
        if read_leaderboard(args.dir, name)["entries"]:
            print(markdown(name, args.dir) + "\n")


if __name__ == "__main__":
    main()
