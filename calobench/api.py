"""The public Python API: load and save shower files, compare generated against reference showers.

    load(name_or_path, dataset=None, tree=None, branches=None) -> ShowerSet   (HDF5 or ROOT)
    save(showerset, path)
    compare(generated, reference, ...) -> Result   (calobench.metrics.evaluate, then JSON and report)

Units: MeV and mm.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from calobench.data.showerfile import save
from calobench.data.showerset import ShowerSet
from calobench.data.validation import check_float_option, check_int_option, check_output_dir, check_output_file
from calobench.data.rootfile import is_root_file
from calobench.datasets import dataset_names, load_reference, open_root_file, open_showers
from calobench.datasets.registry import AmbiguousGeometryError
from calobench.errors import CalobenchError

if TYPE_CHECKING:
    from calobench.metrics.result import Result


def load(name_or_path: str | Path, dataset: str | None = None, tree: str | None = None,
         branches: Mapping[str, str] | None = None) -> ShowerSet:
    """Open a shower file, or the embedded reference sample of a registered dataset.

    A registered dataset name (e.g. ``"stcf11x11"``) that is not an existing path gives
    its embedded reference; a ROOT file (``.root`` or ROOT's magic bytes) is read with uproot
    from ``tree`` with ``branches`` (role -> expression, see calobench.data.rootfile and
    docs/root.md); anything else is read as an HDF5 file, checked against ``dataset`` when
    given. Showers are read lazily (see ShowerSet.iter_chunks).
    """
    if not isinstance(name_or_path, (str, Path)):
        raise CalobenchError(f"load: expected a file path or a dataset name, found {type(name_or_path).__name__}")
    if dataset is not None and not isinstance(dataset, str):
        raise CalobenchError(f"load: dataset: expected a dataset name, found {type(dataset).__name__}")
    path = Path(name_or_path)
    if not path.exists() and str(name_or_path) in dataset_names():
        if dataset is not None and dataset != str(name_or_path):
            raise CalobenchError(f"load: {name_or_path} is the embedded reference of dataset {name_or_path}, "
                                 f"not of dataset {dataset!r}")
        return load_reference(str(name_or_path))
    if not path.exists() and path.suffix == "" and "/" not in str(name_or_path):
        raise CalobenchError(
            f"{name_or_path}: neither a file nor a registered dataset; datasets: {', '.join(dataset_names())}")
    if _is_root(path):
        return open_root_file(path, dataset, tree, branches).showerset()
    if tree is not None or branches:
        raise CalobenchError(f"{path}: tree/branches (--tree, --branch) apply to ROOT files only; this is not one")
    return open_showers(path, dataset)


def _is_root(path: str | Path) -> bool:
    return Path(path).suffix.lower() == ".root" or is_root_file(path)


def _as_showerset(obj, dataset: str | None, what: str, tree: str | None = None,
                  branches: Mapping[str, str] | None = None) -> ShowerSet:
    if isinstance(obj, ShowerSet):
        return obj
    if isinstance(obj, (str, Path)):
        is_root = _is_root(obj)
        return load(obj, dataset, tree if is_root else None, branches if is_root else None)
    raise CalobenchError(f"{what}: expected a ShowerSet or a file path, found {type(obj).__name__}")


def _generated_showerset(generated, dataset: str | None, ref: ShowerSet, tree: str | None = None,
                         branches: Mapping[str, str] | None = None) -> ShowerSet:
    """The generated sample. A file whose cell count fits several geometries (121 cells: stcf11x11
    and bes3-11x11) and that declares none is read with the geometry of the reference ``ref``
    when that is one of them (e.g. ``compare gen.h5 stcf11x11``); a ROOT file without a dataset
    is read as the reference's dataset (``compare sim.root bes3-11x11``)."""
    from calobench.datasets import get_dataset

    if dataset is None and isinstance(generated, (str, Path)) and Path(generated).exists() and _is_root(generated) \
            and ref.dataset in dataset_names():
        dataset = ref.dataset
    try:
        return _as_showerset(generated, dataset, "generated", tree, branches)
    except AmbiguousGeometryError as exc:
        if ref.geometry.name not in exc.candidates:
            raise
        same = [name for name in dataset_names() if get_dataset(name).geometry.name == ref.geometry.name]
        return _as_showerset(generated, same[0], "generated", tree, branches)


def compare(
    generated: ShowerSet | str | Path,
    reference: ShowerSet | str | Path,
    *,
    dataset: str | None = None,
    metrics: list[str] | str | None = None,
    repeats: int = 3,
    seed: int = 0,
    json_path: str | Path | None = None,
    report_dir: str | Path | None = None,
    progress: bool = True,
    max_events: int | None = None,
    chunk_size: int | None = None,
    replicas: int = 20,
    cls_protocol: str = "v2",
    cls_epochs: int | None = None,
    cls_patience: int | None = None,
    cls_hidden: int | None = None,
    cls_layers: int | None = None,
    cls_batch_size: int | None = None,
    cls_lr: float | None = None,
    cls_min_steps: int | None = None,
    cls_max_steps: int | None = None,
    cls_max_events: int | None = None,
    cls_floors: bool = True,
    xgb_estimators: int = 400,
    prdc_max_events: int = 10_000,
    fpd_min_samples: int = 10_000,
    fpd_max_samples: int = 50_000,
    kpd_batch_size: int = 10_000,
    fpd_floors: bool = True,
    tree: str | None = None,
    branches: Mapping[str, str] | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
) -> Result:
    """Evaluate ``generated`` against ``reference`` (ShowerSets, HDF5 paths or dataset names) -> Result.

    metrics: stage names (calobench.metrics.evaluate) as a list or comma-separated string.
    repeats: classifier repetitions (mean and std reported). seed: every random choice.
    max_events: use the first N events of each sample. chunk_size: events per read (default
    about 64 MB of showers). replicas: Poisson-bootstrap replicas of the 1-d distances.
    cls_protocol: "v2" (default) or "challenge" (the CaloChallenge's evaluate.py protocol; see
    calobench.metrics.classifiers); cls_*: its options, None for the protocol's default (epochs and
    patience: challenge only; min/max steps: v2 only); cls_floors: also test the reference halves.
    fpd_floors: also compute FPD and KPD between the reference halves (about 40 % of the stage).
    json_path / report_dir: also write the JSON result / the HTML report there.
    progress: progress lines on stderr.
    tree / branches: how a ROOT file among the two is read (see load); a ROOT ``generated``
    compared with a dataset name as ``reference`` is read as that dataset.
    workers / scheduler: run the feature pass as Dask tasks on a LocalCluster of ``workers``
    processes / the scheduler at that address (both samples must be read from files; the numbers
    are those of the single-process run; calobench.metrics.distributed).
    Memory: at 100 000 events and more, call ``calobench.allocator.return_freed_memory()`` once
    first, as ``calobench compare`` does (100k vs 100k calochallenge-2: 2.3 GB peak, 3.2 GB
    without; it changes glibc's malloc for the whole process, so the library does not do it).
    """
    for name, value, minimum, optional in (
            ("repeats", repeats, 1, False), ("seed", seed, 0, False), ("max_events", max_events, 1, True),
            ("chunk_size", chunk_size, 1, True), ("replicas", replicas, 1, False),
            ("cls_epochs", cls_epochs, 1, True), ("cls_patience", cls_patience, 1, True),
            ("cls_hidden", cls_hidden, 1, True), ("cls_layers", cls_layers, 1, True),
            ("cls_batch_size", cls_batch_size, 1, True), ("cls_min_steps", cls_min_steps, 1, True),
            ("cls_max_steps", cls_max_steps, 1, True), ("cls_max_events", cls_max_events, 1, True),
            ("xgb_estimators", xgb_estimators, 1, False), ("prdc_max_events", prdc_max_events, 1, False),
            ("fpd_min_samples", fpd_min_samples, 2, False), ("fpd_max_samples", fpd_max_samples, 2, False),
            ("kpd_batch_size", kpd_batch_size, 2, False), ("workers", workers, 1, True)):
        check_int_option(value, f"compare: {name}", minimum, optional)
    if cls_lr is not None:
        check_float_option(cls_lr, "compare: cls_lr")
    if fpd_max_samples < fpd_min_samples:
        raise CalobenchError(f"compare: fpd_max_samples ({fpd_max_samples}) is below fpd_min_samples "
                             f"({fpd_min_samples})")
    # output paths are checked before any work, so that a bad one does not waste the evaluation
    if json_path is not None:
        check_output_file(json_path, "compare: json_path")
    if report_dir is not None:
        check_output_dir(report_dir, "compare: report_dir")
    # imported here: the metrics load scipy and scikit-learn (seconds), which `import calobench` does not need
    from calobench.metrics.classifier_tests import ClassifierOptions
    from calobench.metrics.evaluate import EvaluationOptions, ProgressLog, evaluate, parse_stages

    log = ProgressLog(progress)
    classifier = ClassifierOptions.for_protocol(
        cls_protocol, epochs=cls_epochs, batch_size=cls_batch_size, lr=cls_lr, hidden=cls_hidden, n_layer=cls_layers,
        patience=cls_patience, min_steps=cls_min_steps, max_steps=cls_max_steps, max_events=cls_max_events,
        repeats=repeats, xgb_estimators=xgb_estimators, floors=cls_floors)
    options = EvaluationOptions(stages=parse_stages(metrics), seed=seed, max_events=max_events,
                                chunk_size=chunk_size, replicas=replicas, prdc_max_events=prdc_max_events,
                                fpd_min_samples=fpd_min_samples, fpd_max_samples=fpd_max_samples,
                                kpd_batch_size=kpd_batch_size, fpd_floors=fpd_floors, classifier=classifier)
    ref = _as_showerset(reference, dataset, "reference", tree, branches)
    samples = (_generated_showerset(generated, dataset, ref, tree, branches), ref)
    if workers is None and scheduler is None:
        result = evaluate(*samples, options, log=log)
    else:
        from calobench.cluster import dask_client
        from calobench.metrics.distributed import DaskFeed

        with dask_client(workers or 1, scheduler) as client:
            result = evaluate(*samples, options, log=log, feed=DaskFeed(client))
    if json_path is not None:
        try:
            result.to_json(json_path)
        except OSError as exc:
            raise CalobenchError(f"compare: writing {json_path} failed after the evaluation "
                                 f"({exc.strerror or exc}); nothing was written") from None
    if report_dir is not None:
        from calobench.report import write_report

        log("report")
        try:
            result.info["report"] = str(write_report(result, report_dir))
        except OSError as exc:
            kept = f"; the result JSON is kept in {json_path}" if json_path is not None else ""
            raise CalobenchError(f"compare: writing the report into {report_dir} failed after the evaluation "
                                 f"({exc.strerror or exc}){kept}") from None
    log("done")
    return result


__all__ = ["compare", "load", "save"]
