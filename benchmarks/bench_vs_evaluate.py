"""CPU time and peak memory of `calobench compare` against the CaloChallenge evaluate.py, stage by stage.

Run by hand (benchmarks/conftest.py keeps pytest from collecting it). Two steps:

    # 1. once: evaluate.py in its own virtual environment outside this repository (default
    #    /tmp/calochallenge-eval): SOURCE is a clone (or bare git directory) or the git URL of the
    #    CaloChallenge homepage repository, whose code/ folder holds evaluate.py
    python benchmarks/bench_vs_evaluate.py setup --source SOURCE

    # 2. the side-by-side run (OMP_NUM_THREADS=1 for both tools; nice it on a shared machine)
    nice -n 5 python benchmarks/bench_vs_evaluate.py run --events 5000
    nice -n 5 python benchmarks/bench_vs_evaluate.py run --events 20000 --out /tmp/vs_evaluate_20k.json

`setup` clones the repository to DIR/repo, makes DIR/venv (torch==2.13.0 first, CPU wheel, then
numpy<2, h5py, matplotlib, scikit-learn, jetnet from PyPI; pyarrow removed) and a working copy DIR/run of code/ with two
patches, written to DIR/run/PATCHES.txt: LaTeX text rendering off where no `latex` binary exists
(evaluate.py sets usetex=True), and the classifier's train / test / validation split by fractions
(0.6 / 0.2 / 0.2, calobench's split) instead of dataset 2's fixed counts (60000 / 20000 / 20000,
which need 100k events per file; at 100k both give the same split). Nothing of theirs enters
this repository.

`run` writes two dataset-2-shaped files in the CaloChallenge layout (incident_energies (N, 1),
showers (N, 6480), MeV; benchmarks/studies/compare_memory.write_file) -- the reference (seed 2)
and a generated sample (seed 1) whose cells are scaled by 1.05 (calobench.selftest's
energy_scale distortion) -- and runs on that pair, one process per measurement, one after the
other: evaluate.py -m hist-p / hist-chi / fpd (its fpd and kpd modes run the same code: FPD and
KPD) / cls-high, and calobench.compare(metrics=hist / fpd / cls-high); fpd twice, without its
floors (the work evaluate.py does) and with them (calobench's default). CPU time is the child's
user + system time (os.wait4), peak RSS its ru_maxrss; evaluate.py's cached reference .pkl is
deleted before each of its runs, so both tools compute the features every time.

Classifier figures: per epoch = (CPU(E2 epochs) - CPU(E1 epochs)) / (E2 - E1) (fixed costs --
reading, features, calibration -- cancel); for calobench v2, an epoch is one pass over the
training events (n_train / batch optimiser steps), measured the same way with a fixed step count.
Full protocol: evaluate.py and the challenge preset run 50 epochs (measured with --full, else
fixed cost + 50 x per epoch, marked "extrapolated"); v2 runs its step budget with early stopping
(measured). Both tools run one classifier, no floor (calobench's default adds repeats and a floor:
printed separately). AUCs on the distorted pair: evaluate.py's, calobench challenge's and v2's.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "studies"))

DEFAULT_ENV = Path("/tmp/calochallenge-eval")
DEFAULT_DATA = Path("/tmp/calobench-vs-evaluate")
DATASET = "calochallenge-2"
SCALE = 1.05
THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
# numpy < 2: jetnet pulls wasserstein, whose wheel is built against numpy 1; pyarrow (pulled by
# coffea) needs numpy 2 and is optional for awkward, so setup removes it
EVAL_PACKAGES = ["numpy<2", "h5py", "matplotlib", "scikit-learn", "jetnet"]

# (pattern, replacement, why): the patches of the working copy (each pattern must occur once)
SPLIT_PATCH = ("dataset=args.dataset)", "dataset=None)",
               "ttv_split: split by fractions 0.6 / 0.2 / 0.2 (calobench's split) instead of dataset 2's "
               "fixed 60000 / 20000 / 20000 events, which need 100k events per file")
USETEX_PATCH = ("plt.rc('text', usetex=True)", "plt.rc('text', usetex=False)",
                "matplotlib LaTeX rendering off: no latex binary on this machine")


def fail(message: str) -> None:
    """One-line error, exit 2."""
    print(f"bench_vs_evaluate: {message}", file=sys.stderr)
    raise SystemExit(2)


# ---- setup -----------------------------------------------------------------------------------
def _run(cmd: list[str]) -> None:
    """Run a setup command; a failure is a one-line error (exit 2)."""
    if subprocess.run(cmd).returncode != 0:
        fail(f"setup: {' '.join(cmd[:6])} failed")


def setup(source: str, env: Path) -> None:
    """Clone ``source`` to env/repo, make env/venv and the patched working copy env/run."""
    env.mkdir(parents=True, exist_ok=True)
    repo = env / "repo"
    if not (repo / "code" / "evaluate.py").exists():
        shutil.rmtree(repo, ignore_errors=True)
        # only code/'s .py and .xml files are checked out (the notebooks may be absent from a mirror)
        _run(["git", "clone", "--no-checkout", source, str(repo)])
        names = subprocess.run(["git", "-C", str(repo), "ls-tree", "-r", "--name-only", "HEAD", "code/"],
                               capture_output=True, text=True, check=True).stdout.split()
        wanted = [x for x in names if x.endswith((".py", ".xml"))]
        if wanted:
            _run(["git", "-C", str(repo), "checkout", "HEAD", "--"] + wanted)
    if not (repo / "code" / "evaluate.py").exists():
        fail(f"{source}: no code/evaluate.py in this repository")
    venv = env / "venv"
    py = venv / "bin" / "python"
    if not py.exists():
        _run([sys.executable, "-m", "venv", str(venv)])
    pip = [str(py), "-m", "pip", "install", "-q"]
    _run(pip + ["torch==2.13.0"])  # first: any other spec pulls the CUDA wheels
    _run(pip + ["torch==2.13.0"] + EVAL_PACKAGES)
    _run([str(py), "-m", "pip", "uninstall", "-q", "-y", "pyarrow"])
    run = env / "run"
    shutil.rmtree(run, ignore_errors=True)
    shutil.copytree(repo / "code", run)
    patches = [SPLIT_PATCH] + ([USETEX_PATCH] if shutil.which("latex") is None else [])
    text = (run / "evaluate.py").read_text()
    for old, new, _ in patches:
        if text.count(old) != 1:
            fail(f"{run / 'evaluate.py'}: expected {old!r} once, found it {text.count(old)} times")
        text = text.replace(old, new)
    (run / "evaluate.py").write_text(text)
    commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    (run / "PATCHES.txt").write_text(f"evaluate.py of {source} at {commit.strip()}, patched:\n"
                                     + "".join(f"- {why}\n" for _, _, why in patches))
    # importing matplotlib.pyplot once builds its font cache, which would otherwise cost the first timed run
    check = subprocess.run([str(py), "-c", "import torch, jetnet, h5py, sklearn, matplotlib.pyplot; "
                            "print(torch.__version__)"],
                           capture_output=True, text=True)
    if check.returncode != 0:
        fail(f"{venv}: the evaluate.py imports fail: {check.stderr.strip().splitlines()[-1]}")
    print(f"evaluate.py ready in {run} (torch {check.stdout.strip()}); patches: {run / 'PATCHES.txt'}")


# ---- data ------------------------------------------------------------------------------------
def write_pair(folder: Path, n: int) -> tuple[Path, Path]:
    """(generated x1.05, reference) files of n events each in the CaloChallenge layout, written once."""
    import h5py

    import calobench
    from calobench.selftest.distortions import energy_scale
    from compare_memory import write_file

    folder.mkdir(parents=True, exist_ok=True)
    ref, base, gen = (folder / f"{kind}_{n}.h5" for kind in ("ref", "gen", f"gen_x{SCALE}"))
    for path, seed in ((ref, 2), (base, 1)):
        if not path.exists():
            write_file(path, n, seed, DATASET)
    if not gen.exists():
        ss = energy_scale(SCALE)(calobench.load(base, dataset=DATASET), np.random.default_rng(0))
        tmp = gen.with_name(gen.name + ".partial")
        with h5py.File(tmp, "w") as f:
            f.create_dataset("incident_energies", data=np.asarray(ss.energies, np.float32).reshape(-1, 1))
            f.create_dataset("showers", data=np.asarray(ss.showers, np.float32), chunks=(100, ss.showers.shape[1]))
        tmp.rename(gen)
    return gen, ref


# ---- measuring -------------------------------------------------------------------------------
def measure(cmd: list[str], cwd: Path, log: Path) -> dict:
    """Run cmd (stdout + stderr to ``log``): cpu_s (user + system), wall_s, peak_rss_MB, output."""
    env = {**os.environ, **THREAD_ENV, "PYTHONUNBUFFERED": "1"}
    t = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    text = log.read_text()
    if os.waitstatus_to_exitcode(status) != 0:
        fail(f"{' '.join(cmd[:4])} ... exited {os.waitstatus_to_exitcode(status)}; log: {log}\n{text[-2000:]}")
    return {"cpu_s": usage.ru_utime + usage.ru_stime, "wall_s": wall, "peak_rss_MB": usage.ru_maxrss / 1024,
            "output": text, "load_average": list(os.getloadavg())}


def run_evaluate(env: Path, gen: Path, ref: Path, mode: str, out: Path, epochs: int | None = None) -> dict:
    """evaluate.py -m mode on (gen, ref), its reference cache removed first; cls-high: auc, jsd."""
    ref.with_suffix(".pkl").unlink(missing_ok=True)
    cmd = [str(env / "venv" / "bin" / "python"), "evaluate.py", "-i", str(gen), "-r", str(ref), "-m", mode,
           "-d", "2", "--output_dir", str(out / f"eval_{mode}"), "--no_cuda"]
    if epochs is not None:
        cmd += ["--cls_n_epochs", str(epochs)]
    res = measure(cmd, env / "run", out / f"eval_{mode}_{epochs}.log")
    found = re.findall(r"Final result of classifier test \(AUC / JSD\):\s*([0-9.]+) / ([0-9.-]+)", res["output"])
    if found:
        res["auc"], res["jsd"] = float(found[-1][0]), float(found[-1][1])
    res["epochs_run"] = len(re.findall(r"Accuracy on test set is", res["output"])) - (1 if found else 0)
    del res["output"]
    _progress(f"evaluate.py -m {mode}" + (f" --cls_n_epochs {epochs}" if epochs else ""), res,
              f"AUC {res['auc']:.4f}" if "auc" in res else "")
    return res


def _progress(label: str, res: dict, extra: str = "") -> None:
    """One line per measurement as it completes (the table comes at the end)."""
    print(f"  measured {label}: CPU {res['cpu_s']:.1f} s, wall {res['wall_s']:.0f} s, peak RSS "
          f"{res['peak_rss_MB']:.0f} MB, load {res['load_average'][0]:.1f} {extra}", flush=True)


CALOBENCH_CODE = """
import json, sys
import calobench
r = calobench.compare(sys.argv[1], sys.argv[2], metrics=sys.argv[3], progress=False, **json.loads(sys.argv[4]))
print("RESULT " + json.dumps({"metrics": r.metrics, "stages": r.info.get("stages", {}),
                              "runs": r.info.get("classifier_runs", {})}, default=str))
"""


def run_calobench(gen: Path, ref: Path, metrics: str, options: dict, log: Path) -> dict:
    """calobench.compare(gen, ref, metrics, **options) in a child: cpu_s, peak_rss_MB, metrics, runs."""
    res = measure([sys.executable, "-c", CALOBENCH_CODE, str(gen), str(ref), metrics, json.dumps(options)],
                  Path.cwd(), log)
    line = [x for x in res.pop("output").splitlines() if x.startswith("RESULT ")][-1]
    res.update(json.loads(line[len("RESULT "):]))
    auc = res["metrics"].get("auc_high", {}).get("value")
    _progress(f"calobench {metrics} {json.dumps(options)}", res, f"AUC {auc:.4f}" if auc is not None else "")
    return res


# ---- the run ---------------------------------------------------------------------------------
def per_epoch(short: dict, long: dict, e_short: float, e_long: float) -> float:
    """CPU seconds per epoch from two runs of e_short and e_long epochs."""
    return (long["cpu_s"] - short["cpu_s"]) / (e_long - e_short)


def main_run(args: argparse.Namespace) -> None:
    env, out = Path(args.env), Path(args.dir)
    if not (env / "venv" / "bin" / "python").exists() or not (env / "run" / "evaluate.py").exists():
        fail(f"{env}: evaluate.py is not set up; run: python {sys.argv[0]} setup --source SOURCE "
             "(a clone or the git URL of the CaloChallenge homepage repository)")
    # in a child process: a child's peak RSS (wait4's ru_maxrss) starts from its parent's at fork,
    # so this process must not hold the showers it writes
    code = (f"import sys; sys.path[:0] = [{str(HERE)!r}, {str(HERE / 'studies')!r}]; "
            f"from bench_vs_evaluate import write_pair; from pathlib import Path; "
            f"print(*write_pair(Path({str(out)!r}), {int(args.events)}))")
    gen, ref = (Path(x) for x in subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                                                text=True).stdout.split())
    n, e1, e2 = args.events, args.epochs_short, args.epochs_long
    print(f"# {n} vs {n} events, dataset-2 shape, generated cells x{SCALE}; OMP_NUM_THREADS=1; "
          f"load average {os.getloadavg()[0]:.2f}", flush=True)
    rows: dict[str, dict] = {}

    def show(name: str, ev: dict | None, cb: dict | None, note: str = "") -> None:
        rows[name] = {"evaluate": ev, "calobench": cb, "note": note}
        ratio = f"{ev['cpu_s'] / cb['cpu_s']:6.1f}x" if ev and cb and cb["cpu_s"] > 0 else "     -"
        fmt = lambda r: f"{r['cpu_s']:8.1f} s {r.get('peak_rss_MB', float('nan')):6.0f} MB" if r else " " * 18
        print(f"{name:34s} {fmt(ev)}   {fmt(cb)}   {ratio}  {note}", flush=True)

    print(f"{'stage':34s} {'evaluate.py CPU, RSS':>20s}   {'calobench CPU, RSS':>20s}   ratio", flush=True)
    stages = args.stages.split(",")
    if "hist" in stages:
        ev_p = run_evaluate(env, gen, ref, "hist-p", out)
        ev_c = run_evaluate(env, gen, ref, "hist-chi", out)
        cb = run_calobench(gen, ref, "hist", {}, out / "cb_hist.log")
        show("hist (evaluate.py hist-p)", ev_p, cb)
        show("hist (evaluate.py hist-chi)", ev_c, cb)
    if "fpd" in stages:
        ev = run_evaluate(env, gen, ref, "fpd", out)
        same = run_calobench(gen, ref, "fpd", {"fpd_floors": False}, out / "cb_fpd_nofloor.log")
        cb = run_calobench(gen, ref, "fpd", {}, out / "cb_fpd.log")
        show("fpd + kpd (the same work)", ev, same, "calobench without its floors")
        show("fpd + kpd with floors", ev, cb, "calobench's default: also the reference halves")
    if "cls-high" in stages:
        one = {"repeats": 1, "cls_floors": False}
        ev1 = run_evaluate(env, gen, ref, "cls-high", out, e1)
        ev2 = run_evaluate(env, gen, ref, "cls-high", out, e2)
        ch1 = run_calobench(gen, ref, "cls-high", {**one, "cls_protocol": "challenge", "cls_epochs": e1},
                            out / "cb_ch1.log")
        ch2 = run_calobench(gen, ref, "cls-high", {**one, "cls_protocol": "challenge", "cls_epochs": e2},
                            out / "cb_ch2.log")
        v2 = run_calobench(gen, ref, "cls-high", one, out / "cb_v2.log")
        health = v2["runs"]["high"][0]
        batch = health["batch_size"]
        steps_per_epoch = int(0.6 * n) * 2 / batch
        s1, s2 = args.steps_short, args.steps_long
        v21 = run_calobench(gen, ref, "cls-high", {**one, "cls_min_steps": s1, "cls_max_steps": s1}, out / "cb_v21.log")
        v22 = run_calobench(gen, ref, "cls-high", {**one, "cls_min_steps": s2, "cls_max_steps": s2}, out / "cb_v22.log")
        rows["measurements"] = {"evaluate_epochs_short": ev1, "evaluate_epochs_long": ev2, "challenge_epochs_short": ch1,
                                "challenge_epochs_long": ch2, "v2_steps_short": v21, "v2_steps_long": v22}
        ev_epoch, ch_epoch = per_epoch(ev1, ev2, e1, e2), per_epoch(ch1, ch2, e1, e2)
        v2_epoch = per_epoch(v21, v22, s1, s2) * steps_per_epoch
        show("cls-high per epoch, challenge", {"cpu_s": ev_epoch}, {"cpu_s": ch_epoch})
        show("cls-high per epoch, v2", {"cpu_s": ev_epoch}, {"cpu_s": v2_epoch},
             f"(epoch = {steps_per_epoch:.0f} steps of {batch})")
        if args.full:
            ev_full = run_evaluate(env, gen, ref, "cls-high", out, 50)
            ch_full = run_calobench(gen, ref, "cls-high", {**one, "cls_protocol": "challenge"}, out / "cb_chf.log")
            note = "measured"
        else:
            ev_full = {"cpu_s": ev1["cpu_s"] + (50 - e1) * ev_epoch, "auc": ev2.get("auc")}
            ch_full = {"cpu_s": ch1["cpu_s"] + (50 - e1) * ch_epoch, "metrics": ch2["metrics"]}
            note = f"extrapolated from {e1} and {e2} epochs"
        show("cls-high protocol, challenge (50 ep)", ev_full, ch_full, note)
        show("cls-high protocol, v2", ev_full, v2, f"v2 measured: {health['steps']} steps, best {health['best_step']}")
        if args.default_cost:
            dflt = run_calobench(gen, ref, "cls-high", {}, out / "cb_v2_default.log")
            show("cls-high v2 default (3 runs + floor)", None, dflt)
        auc = lambda r: r["metrics"]["auc_high"]["value"]
        rows["auc"] = {"evaluate": ev_full.get("auc"), "challenge": auc(ch_full), "v2": auc(v2),
                       "epochs_of_evaluate_auc": 50 if args.full else e2,
                       "epochs_of_challenge_auc": 50 if args.full else e2}
        print(f"AUC on the x{SCALE} pair: evaluate.py {ev_full.get('auc')} ({rows['auc']['epochs_of_evaluate_auc']} epochs), "
              f"calobench challenge {auc(ch_full):.4f}, calobench v2 {auc(v2):.4f} "
              f"(JSD v2 {v2['metrics']['jsd_high']['value']:.4f})", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps({"events": n, "scale": SCALE, "rows": rows}, indent=2, default=str))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("setup", help="clone evaluate.py and make its virtual environment")
    s.add_argument("--source", required=True, help="clone, bare git directory or git URL of the CaloChallenge "
                                                   "homepage repository (code/evaluate.py)")
    s.add_argument("--env", default=str(DEFAULT_ENV), help=f"where (default {DEFAULT_ENV}; outside the repository)")
    r = sub.add_parser("run", help="the side-by-side measurement")
    r.add_argument("--env", default=str(DEFAULT_ENV), help=f"evaluate.py's setup folder (default {DEFAULT_ENV})")
    r.add_argument("--dir", default=str(DEFAULT_DATA), help=f"data and logs (default {DEFAULT_DATA})")
    r.add_argument("--events", type=int, default=5000, help="events per file (default 5000)")
    r.add_argument("--stages", default="hist,fpd,cls-high", help="of hist, fpd, cls-high (default all three)")
    r.add_argument("--epochs-short", type=int, default=1, help="classifier epochs of the short run (default 1)")
    r.add_argument("--epochs-long", type=int, default=3, help="classifier epochs of the long run (default 3)")
    r.add_argument("--steps-short", type=int, default=50, help="v2 steps of the short run (default 50)")
    r.add_argument("--steps-long", type=int, default=300, help="v2 steps of the long run (default 300)")
    r.add_argument("--full", action="store_true", help="also run both 50-epoch protocols (else extrapolated)")
    r.add_argument("--default-cost", action="store_true", help="also time calobench's default cls-high "
                                                              "(3 runs and the floor)")
    r.add_argument("--out", default=None, help="write the figures as JSON here")
    args = p.parse_args()
    if args.command == "setup":
        setup(args.source, Path(args.env))
    else:
        main_run(args)


if __name__ == "__main__":
    main()
