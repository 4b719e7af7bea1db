"""Leaderboard storage under load: concurrent writers, cost of one add, kill -9 of writers.

usage: python benchmarks/bench_leaderboard_concurrency.py [--writers 8] [--entries 100] [--kills 20]
                                                          [--sizes 10,100,1000] [--adds 30]

1. ``--writers`` processes each add ``--entries`` entries at once into one temporary leaderboard:
   reports entries found, lost, writers finished, the slowest add, and whether the view validates.
2. The cost of one add with 10, 100 and 1000 entries already there (median of ``--adds`` adds;
   it must not grow), beside the cost of reading the whole view (which does grow).
3. ``--kills`` times, a writer is killed with SIGKILL at a random moment while adding: the
   leaderboard stays valid, every entry it acknowledged is there, and the next writer leaves no
   temporary file behind.
Entries are copies of a curated stcf11x11 entry (about 16 kB each). Exits 1 when a check fails.
Also a pytest-benchmark case (``pytest benchmarks/bench_leaderboard_concurrency.py``).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from calobench.leaderboard import curated_dir, new_entry_id, read_entries, validate_directory
from calobench.leaderboard.store import TEMP_DIR, add_entry, dataset_dir, write_entry_file

DATASET = "stcf11x11"


def template() -> dict:
    """A valid entry to copy: the first curated stcf11x11 entry."""
    return json.loads(sorted((curated_dir() / DATASET).glob("*.json"))[0].read_text())


def variant(base: dict, model: str, seed: int) -> dict:
    """A copy of ``base`` with its own model name, seed and a new unique id."""
    entry = copy.deepcopy(base)
    entry["model"], entry["provenance"]["seed"] = model, seed
    entry["id"] = new_entry_id(model, entry["preset"], seed)
    return entry


# ---- the writer process --------------------------------------------------------------
def writer(directory: str, worker: int, count: int, template_path: str, go: str) -> None:
    """Add ``count`` entries, printing 'ACK <id>' after each add returned, then 'DONE <max ms>'."""
    base = json.loads(Path(template_path).read_text())
    while go and not Path(go).exists():
        time.sleep(0.005)
    slowest = 0.0
    for i in range(count):
        entry = variant(base, f"w{worker}", i)
        t0 = time.perf_counter()
        add_entry(directory, DATASET, entry)
        slowest = max(slowest, time.perf_counter() - t0)
        print(f"ACK {entry['id']}", flush=True)
    print(f"DONE {slowest * 1e3:.1f}", flush=True)


def _start_writer(directory: Path, worker: int, count: int, template_path: Path, go: Path | None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, "--writer", str(directory), str(worker), str(count),
                             str(template_path), str(go or "")], stdout=subprocess.PIPE, text=True)


def _view_valid(directory: Path) -> bool:
    report = validate_directory(directory)
    return all(not problems for problems in report.values())


# ---- 1. concurrent writers -----------------------------------------------------------
def concurrency(root: Path, base_path: Path, writers: int, entries: int) -> dict:
    directory = root / "concurrent"
    go = root / "go"
    procs = [_start_writer(directory, w, entries, base_path, go) for w in range(writers)]
    time.sleep(1.0)
    t0 = time.perf_counter()
    go.write_text("")
    outputs = [p.communicate(timeout=1800)[0] for p in procs]
    wall = time.perf_counter() - t0
    acked = {line.split()[1] for out in outputs for line in out.splitlines() if line.startswith("ACK ")}
    slowest = max((float(line.split()[1]) for out in outputs for line in out.splitlines()
                   if line.startswith("DONE ")), default=float("nan"))
    found = {e["id"] for e in read_entries(directory, DATASET)}
    return {"writers": writers, "entries_per_writer": entries, "finished": sum(p.returncode == 0 for p in procs),
            "entries_found": len(found), "acknowledged": len(acked), "lost": len(acked - found),
            "view_valid": _view_valid(directory), "wall_s": round(wall, 2), "slowest_add_ms": slowest,
            "debris": len(os.listdir(dataset_dir(directory, DATASET) / TEMP_DIR))}


# ---- 2. cost of one add --------------------------------------------------------------
def add_cost(root: Path, base: dict, sizes: list[int], adds: int) -> list[dict]:
    rows = []
    for size in sizes:
        directory = root / f"size{size}"
        folder = dataset_dir(directory, DATASET)
        for i in range(size):
            write_entry_file(folder, variant(base, "prefill", i))
        times = []
        for i in range(adds):
            entry = variant(base, "timed", i)
            t0 = time.perf_counter()
            add_entry(directory, DATASET, entry)
            times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        count = len(read_entries(directory, DATASET))
        read_s = time.perf_counter() - t0
        rows.append({"existing": size, "add_ms_median": round(statistics.median(times) * 1e3, 2),
                     "add_ms_min": round(min(times) * 1e3, 2), "add_ms_max": round(max(times) * 1e3, 2),
                     "read_view_ms": round(read_s * 1e3, 1), "entries_read": count})
    return rows


# ---- 3. kill -9 ----------------------------------------------------------------------
def kills(root: Path, base_path: Path, base: dict, rounds: int, seed: int = 0) -> dict:
    directory = root / "killed"
    rng = random.Random(seed)
    acked: set[str] = set()
    debris_seen = 0
    killed = 0
    for r in range(rounds):
        proc = _start_writer(directory, 100 + r, 100_000, base_path, None)
        first = threading.Event()
        lines: list[str] = []

        def read(p=proc, out=lines, event=first) -> None:
            for line in p.stdout:
                out.append(line)
                event.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        first.wait(120)  # the writer has imported calobench and is adding
        time.sleep(rng.uniform(0.0, 0.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        reader.join(10)
        killed += proc.returncode == -signal.SIGKILL
        acked |= {line.split()[1] for line in lines if line.startswith("ACK ")}
        debris_seen += len(os.listdir(dataset_dir(directory, DATASET) / TEMP_DIR))
    found = {e["id"] for e in read_entries(directory, DATASET)}  # strict: raises if any file is broken
    valid = _view_valid(directory)
    add_entry(directory, DATASET, variant(base, "next-writer", 0))  # the next writer sweeps
    left = len(os.listdir(dataset_dir(directory, DATASET) / TEMP_DIR))
    return {"kills": killed, "acknowledged": len(acked), "lost": len(acked - found), "view_valid": valid,
            "temp_files_left_by_kills": debris_seen, "debris_after_next_writer": left,
            "entries_on_disk": len(found)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--entries", type=int, default=100)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--sizes", default="10,100,1000")
    parser.add_argument("--adds", type=int, default=30)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    base = template()
    with tempfile.TemporaryDirectory(prefix="calobench-lb-bench-") as tmp:
        root = Path(tmp)
        base_path = root / "template.json"
        base_path.write_text(json.dumps(base))
        figures = {"concurrency": concurrency(root, base_path, args.writers, args.entries)}
        print("concurrency:", json.dumps(figures["concurrency"]), flush=True)
        figures["add_cost"] = add_cost(root, base, [int(s) for s in args.sizes.split(",")], args.adds)
        for row in figures["add_cost"]:
            print("add cost:", json.dumps(row), flush=True)
        figures["kill"] = kills(root, base_path, base, args.kills)
        print("kill -9:", json.dumps(figures["kill"]), flush=True)
    c, k = figures["concurrency"], figures["kill"]
    ok = (c["entries_found"] == args.writers * args.entries and c["lost"] == 0 and c["finished"] == args.writers
          and c["view_valid"] and k["lost"] == 0 and k["view_valid"] and k["debris_after_next_writer"] == 0)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    print("all checks passed" if ok else "CHECK FAILED")
    return 0 if ok else 1


# ---- pytest-benchmark ----------------------------------------------------------------
def test_add_with_200_existing_entries(benchmark, tmp_path, rounds):
    """One add into a leaderboard of 200 entries (pytest-benchmark); the entry lands, nothing else."""
    base = template()
    folder = dataset_dir(tmp_path, DATASET)
    for i in range(200):
        write_entry_file(folder, variant(base, "prefill", i))
    counter = iter(range(10**6))
    benchmark.pedantic(lambda: add_entry(tmp_path, DATASET, variant(base, "timed", next(counter))),
                       rounds=rounds, warmup_rounds=1)
    assert len(read_entries(tmp_path, DATASET)) == 200 + rounds + 1
    assert os.listdir(folder / TEMP_DIR) == []


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--writer":
        _, _, directory, worker, count, template_path, go = sys.argv
        writer(directory, int(worker), int(count), template_path, go)
        sys.exit(0)
    sys.exit(main())
