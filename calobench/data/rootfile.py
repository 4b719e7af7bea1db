"""Reading and writing shower files as ROOT trees (uproot; awkward for jagged branches).

A ROOT tree holds one entry per event. What each branch means is given by a mapping
``role -> expression`` (an uproot expression over the tree's branches, e.g. ``"E_mc*1000"``):

- ``energy``: incident energy in MeV (scalar per event);
- one role per condition of the dataset (e.g. ``px``, ``particle``): scalar per event;
- voxel geometries, either ``cells``: a fixed-size array per event (``float[121]``,
  ``float[11][11]`` or a vector of exactly n_cells values), flattened row-major to the dense
  (N, cells) vector; or ``cell_index`` + ``cell_energy``: jagged lists of cell numbers
  (0..cells-1) and their energies (MeV), scattered (summed) into the dense vector;
- point clouds: ``cell_x``, ``cell_y``, ``cell_z`` (mm), ``cell_e`` (MeV): jagged cell lists.

Roles not given take the default names of ``default_branches`` (the names that
``write_root`` writes). Conditions and energies are read when the file is opened (they are
small); showers are read chunk by chunk (``read_showers(start, stop)`` reads that entry range
only), so a ShowerSet opened from a ROOT file streams like one from HDF5.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from calobench.data.geometry import Geometry
from calobench.data.showerset import CellList, ShowerSet
from calobench.data.validation import check_conditions, check_energies, check_output_file
from calobench.errors import CalobenchError

#: Default tree name (written by write_root; read when the file holds several trees).
DEFAULT_TREE = "showers"
#: Name of the TObjString that write_root stores the dataset name in.
DATASET_KEY = "calobench_dataset"
#: Name of the TObjString holding the provenance JSON.
PROVENANCE_KEY = "calobench_provenance"
#: Name of the TObjString holding the particle name(s).
PARTICLE_KEY = "calobench_particle"
ENERGY_ROLE = "energy"
DENSE_ROLES = ("cells",)
SPARSE_ROLES = ("cell_index", "cell_energy")
CLOUD_ROLES = ("cell_x", "cell_y", "cell_z", "cell_e")


def is_root_file(path: str | Path) -> bool:
    """True when ``path`` is an existing file starting with ROOT's magic bytes ``root``."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"root"
    except OSError:
        return False


def default_branches(condition_names: list[str] | tuple[str, ...], geometry: Geometry,
                     sparse: bool = False) -> dict[str, str]:
    """role -> branch name: ``energy`` -> ``incident_energy``, each condition -> its own name,
    cells -> ``cells`` (dense), ``cell_index``/``cell_energy`` (sparse voxels) or
    ``cell_x``/``cell_y``/``cell_z``/``cell_e`` (point clouds)."""
    branches = {ENERGY_ROLE: "incident_energy"}
    branches.update({name: name for name in condition_names})
    if not geometry.is_voxel:
        branches.update({role: role for role in CLOUD_ROLES})
    elif sparse:
        branches.update({role: role for role in SPARSE_ROLES})
    else:
        branches["cells"] = "cells"
    return branches


def parse_branch_options(items: list[str] | None) -> dict[str, str]:
    """``["name=expr", ...]`` (the CLI's ``--branch``) -> {name: expr}."""
    out: dict[str, str] = {}
    for item in items or []:
        name, sep, expr = item.partition("=")
        if not sep or not name.strip() or not expr.strip():
            raise CalobenchError(f"--branch {item!r}: expected ROLE=EXPRESSION, e.g. --branch energy=E_mc*1000")
        out[name.strip()] = expr.strip()
    return out


def _uproot():
    try:
        import uproot
    except ImportError:  # pragma: no cover - a dependency, but keep the message plain
        raise CalobenchError("reading ROOT files needs uproot: pip install uproot awkward") from None
    return uproot


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200]


class RootShowerReader:
    """An opened, validated ROOT tree of showers of a known geometry (a ShowerSource).

    geometry: the readout; condition_names: the dataset's conditions (each needs a branch);
    tree: the TTree's name (None: the only tree in the file, else ``showers``);
    branches: role -> expression overriding ``default_branches``.
    """

    def __init__(self, path: str | Path, geometry: Geometry, condition_names: list[str] | tuple[str, ...],
                 dataset: str = "", tree: str | None = None, branches: Mapping[str, str] | None = None) -> None:
        self.path = Path(path)
        self.geometry = geometry
        self.dataset = dataset or geometry.name
        self.geometry_source = "given"
        self.format_version = "ROOT tree"
        self.condition_names = list(condition_names)
        given = dict(branches or {})
        self.layout = self._choose_layout(given)
        self.branches = {**default_branches(self.condition_names, geometry, self.layout == "sparse"), **given}
        known = {ENERGY_ROLE, *self.condition_names, *self._shower_roles()}
        unknown = sorted(set(self.branches) - known - set(DENSE_ROLES + SPARSE_ROLES + CLOUD_ROLES))
        if unknown:
            raise CalobenchError(f"{self.path}: --branch {unknown[0]}: unknown role; roles: {', '.join(sorted(known))}")
        self.branches = {role: expr for role, expr in self.branches.items() if role in known}
        uproot = _uproot()
        if not self.path.exists():
            raise CalobenchError(f"{self.path}: no such file")
        try:
            file = uproot.open(self.path)
        except Exception as exc:  # noqa: BLE001 - any reader failure is a bad file
            raise CalobenchError(f"{self.path}: not a readable ROOT file ({type(exc).__name__}: {_one_line(exc)})") \
                from None
        with file:
            self.tree_name = self._tree_name(file, tree)
            keys = set(file[self.tree_name].keys(recursive=True))
            if self.layout == "dense" and "cells" not in given and "cells" not in keys \
                    and set(SPARSE_ROLES) <= keys:  # the default jagged layout that write_root(sparse=True) writes
                self.layout = "sparse"
                self.branches = {**{k: v for k, v in self.branches.items() if k != "cells"},
                                 **{r: r for r in SPARSE_ROLES}}
            self.particle, self.provenance = "", {}
            if PROVENANCE_KEY in file:
                try:
                    self.provenance = json.loads(str(file[PROVENANCE_KEY]))
                except (ValueError, TypeError):
                    self.provenance = {}
            if PARTICLE_KEY in file:
                self.particle = str(file[PARTICLE_KEY])
            ttree = file[self.tree_name]
            self.n_events = int(ttree.num_entries)
            scalars = [ENERGY_ROLE] + self.condition_names
            values = self._arrays(ttree, scalars, 0, self.n_events)
        flat = {role: self._scalar(values[role], role) for role in scalars}
        self.energies = flat[ENERGY_ROLE]
        check_energies(self.energies, self._where(ENERGY_ROLE))
        self.conditions = check_conditions({c: flat[c] for c in self.condition_names}, self.n_events,
                                           f"{self.path}: tree '{self.tree_name}'")

    # ---- layout and names ----------------------------------------------------------------
    def _choose_layout(self, given: Mapping[str, str]) -> str:
        if not self.geometry.is_voxel:
            return "pointcloud"
        if "cells" in given and any(r in given for r in SPARSE_ROLES):
            raise CalobenchError(f"{self.path}: --branch cells and --branch cell_index/cell_energy: give one "
                                 f"cell layout (a fixed array or jagged index + energy lists)")
        if any(r in given for r in SPARSE_ROLES):
            missing = [r for r in SPARSE_ROLES if r not in given]
            if missing:
                raise CalobenchError(f"{self.path}: --branch {missing[0]}: needed with --branch "
                                     f"{SPARSE_ROLES[1 - SPARSE_ROLES.index(missing[0])]} (jagged cell lists)")
            return "sparse"
        return "dense"

    def _shower_roles(self) -> tuple[str, ...]:
        return {"dense": DENSE_ROLES, "sparse": SPARSE_ROLES, "pointcloud": CLOUD_ROLES}[self.layout]

    def _where(self, role: str) -> str:
        return f"{self.path}: tree '{self.tree_name}': branch '{self.branches[role]}' ({role})"

    def _tree_name(self, file, tree: str | None) -> str:
        trees = sorted({k.split(";")[0] for k, cls in file.classnames().items() if cls in ("TTree", "TNtuple")})
        if tree is None:
            if len(trees) == 1:
                return trees[0]
            if DEFAULT_TREE in trees:
                return DEFAULT_TREE
            listed = ", ".join(trees) or "none"
            raise CalobenchError(f"{self.path}: which tree? pass --tree (trees in the file: {listed})")
        if tree not in trees:
            raise CalobenchError(f"{self.path}: tree '{tree}': not in the file (trees: {', '.join(trees) or 'none'})")
        return tree

    # ---- reading -------------------------------------------------------------------------
    def _arrays(self, ttree, roles: list[str], start: int, stop: int) -> dict:
        """role -> awkward array of entries start..stop-1; a bad branch or expression is a CalobenchError."""
        names = set(ttree.keys(recursive=True))
        for role in roles:
            expr = self.branches[role]
            if expr in names:
                continue
            try:
                ttree.arrays([expr], entry_start=0, entry_stop=min(1, self.n_events), library="ak")
            except Exception as exc:  # noqa: BLE001 - uproot raises many kinds on bad expressions
                hint = "no such branch" if expr.isidentifier() else f"bad expression ({type(exc).__name__})"
                sample = ", ".join(sorted(names)[:12])
                raise CalobenchError(f"{self.path}: tree '{self.tree_name}': branch '{expr}' ({role}): {hint}; "
                                     f"branches: {sample}; set it with --branch {role}=EXPR") from None
        aliases = {f"_cb_{role}": self.branches[role] for role in roles}
        try:
            out = ttree.arrays(list(aliases), aliases=aliases, entry_start=start, entry_stop=stop, library="ak")
        except Exception as exc:  # noqa: BLE001
            raise CalobenchError(f"{self.path}: tree '{self.tree_name}': entries {start}-{stop}: unreadable "
                                 f"({type(exc).__name__}: {_one_line(exc)})") from None
        return {role: out[f"_cb_{role}"] for role in roles}

    def _scalar(self, array, role: str) -> np.ndarray:
        """(N,) float64 from an awkward array of one number per entry."""
        import awkward as ak

        if array.ndim != 1:
            raise CalobenchError(f"{self._where(role)}: expected one number per event, found type {array.type}")
        try:
            values = ak.to_numpy(array)
        except Exception:  # noqa: BLE001 - records, strings, options
            raise CalobenchError(f"{self._where(role)}: expected numbers, found type {array.type}") from None
        if values.dtype.kind not in "fiub":
            raise CalobenchError(f"{self._where(role)}: expected numbers, found {values.dtype}")
        return values.astype(np.float64) if values.dtype.kind != "f" else values

    def _fixed(self, array, role: str, n: int) -> np.ndarray:
        """(n, cells) float32 from fixed-size (or regular jagged) arrays of n_cells values per entry."""
        import awkward as ak

        cells = self.geometry.n_cells
        values = None
        if array.ndim == 2 and np.all(ak.to_numpy(ak.num(array, axis=1)) == cells):  # vectors of n_cells
            values = ak.to_numpy(ak.flatten(array)).reshape(n, cells)
        elif array.ndim > 1:
            try:  # regular arrays: float[121], float[11][11]
                values = ak.to_numpy(array).reshape(n, -1)
            except (ValueError, TypeError):
                values = None
        if values is None or values.shape[1] != cells or values.dtype.kind not in "fiu":
            raise CalobenchError(f"{self._where(role)}: expected {cells} numbers per event for {self.geometry.name} "
                                 f"(a fixed array like cells[{cells}]), found type {array.type}")
        return np.asarray(values, dtype=np.float32)

    def _jagged(self, arrays: dict, roles: tuple[str, ...]) -> tuple[np.ndarray, list[np.ndarray]]:
        """(counts (n,), [flat values (M,) per role]) of jagged lists with equal lengths per event."""
        import awkward as ak

        counts = None
        flats = []
        for role in roles:
            array = arrays[role]
            if array.ndim != 2:
                raise CalobenchError(f"{self._where(role)}: expected a list of numbers per event, "
                                     f"found type {array.type}")
            c = ak.to_numpy(ak.num(array, axis=1))
            if counts is not None and not np.array_equal(c, counts):
                raise CalobenchError(f"{self._where(role)}: list lengths differ from branch "
                                     f"'{self.branches[roles[0]]}' ({roles[0]})")
            counts = c
            flats.append(ak.to_numpy(ak.flatten(array)))
        return counts.astype(np.int64), flats

    def read_showers(self, start: int, stop: int) -> np.ndarray | CellList:
        """Showers of events start..stop-1: (n, cells) float32 or a CellList (finite values checked)."""
        uproot = _uproot()
        n = stop - start
        roles = self._shower_roles()
        with uproot.open(self.path) as file:
            arrays = self._arrays(file[self.tree_name], list(roles), start, stop)
        if self.layout == "dense":
            out = self._fixed(arrays["cells"], "cells", n)
            values, role = out, "cells"
        elif self.layout == "sparse":
            counts, (index, energy) = self._jagged(arrays, SPARSE_ROLES)
            if index.dtype.kind == "f" and np.any(index != np.round(index)):
                raise CalobenchError(f"{self._where('cell_index')}: expected integer cell numbers")
            index = index.astype(np.int64)
            if len(index) and (index.min() < 0 or index.max() >= self.geometry.n_cells):
                raise CalobenchError(f"{self._where('cell_index')}: expected cell numbers in "
                                     f"0..{self.geometry.n_cells - 1}, found {index.min()}..{index.max()}")
            out = np.zeros((n, self.geometry.n_cells), dtype=np.float32)
            np.add.at(out, (np.repeat(np.arange(n), counts), index), energy.astype(np.float32))
            values, role = energy, "cell_energy"
        else:
            counts, columns = self._jagged(arrays, CLOUD_ROLES)
            offsets = np.zeros(n + 1, dtype=np.int64)
            np.cumsum(counts, out=offsets[1:])
            out = CellList(np.stack(columns, axis=1).astype(np.float32).reshape(-1, 4), offsets)
            values, role = out.cells, "cell_e"
        if not np.all(np.isfinite(values)):
            raise CalobenchError(f"{self._where(role)}: expected finite values in events {start}-{stop}")
        return out

    def showerset(self) -> ShowerSet:
        """A file-backed ShowerSet (showers read lazily, chunk by chunk)."""
        provenance = {**self.provenance, "root_tree": self.tree_name, "root_branches": dict(self.branches)}
        return ShowerSet(self.geometry, self.energies, None, self.conditions, self.particle, provenance,
                         self.dataset, source=self)


def read_root_dataset_name(path: str | Path) -> str:
    """The dataset name that write_root stored in the file ("" when none)."""
    uproot = _uproot()
    try:
        with uproot.open(path) as file:
            return str(file[DATASET_KEY]) if DATASET_KEY in file else ""
    except Exception:  # noqa: BLE001 - an unreadable file is reported by RootShowerReader
        return ""


def write_root(showerset: ShowerSet, path: str | Path, tree: str = DEFAULT_TREE, sparse: bool = False,
               chunk_size: int = 10000) -> Path:
    """Write a ShowerSet as a ROOT tree with the default branch names (see default_branches).

    Dense voxels: ``cells`` float32[cells]; sparse (``sparse=True``): jagged ``cell_index`` int32 and
    ``cell_energy`` float32 with counter ``ncell``; point clouds: jagged ``cell_x/y/z/e`` float32 with
    counter ``ncell``. Energies and conditions keep their dtype (float64 conditions). Written to a
    temporary file renamed into place on success.
    """
    import os

    import awkward as ak

    uproot = _uproot()
    path = Path(path)
    check_output_file(path, "export: output")
    geometry = showerset.geometry
    names = list(showerset.conditions)
    sparse = sparse and geometry.is_voxel
    energy_dtype = showerset.energies.dtype if showerset.energies.dtype.kind == "f" else np.float64
    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        with uproot.recreate(tmp) as file:
            file[DATASET_KEY] = showerset.dataset
            file[PARTICLE_KEY] = showerset.particle
            file[PROVENANCE_KEY] = json.dumps(showerset.provenance, sort_keys=True, default=str)
            out = None
            for chunk in showerset.iter_chunks(chunk_size):
                data: dict = {"incident_energy": chunk.energies.astype(energy_dtype)}
                data.update({c: np.asarray(chunk.conditions[c], dtype=np.float64) for c in names})
                showers = chunk.showers
                if geometry.is_voxel and not sparse:
                    data["cells"] = np.ascontiguousarray(showers, dtype=np.float32)
                elif geometry.is_voxel:
                    event, cell = np.nonzero(showers)
                    counts = np.bincount(event, minlength=len(chunk))
                    data["cell"] = ak.zip({"index": ak.unflatten(cell.astype(np.int32), counts),
                                           "energy": ak.unflatten(showers[event, cell].astype(np.float32), counts)})
                else:
                    cells = showers.cells.astype(np.float32)
                    data["cell"] = ak.zip({k: ak.unflatten(cells[:, i], showers.counts)
                                           for i, k in enumerate("xyze")})
                if out is None:  # a TTree (not an RNTuple), typed from the first chunk
                    types = {k: v.type if isinstance(v, ak.Array) else (v.dtype, v.shape[1:])
                             for k, v in data.items()}
                    out = file.mktree(tree, types)
                out.extend(data)
            if out is None:
                raise CalobenchError(f"export: {path}: no events to write")
        os.replace(tmp, path)
    except OSError as exc:
        raise CalobenchError(f"export: {path}: cannot write ({exc.strerror or exc})") from None
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


__all__ = ["DEFAULT_TREE", "RootShowerReader", "default_branches", "is_root_file", "parse_branch_options",
           "read_root_dataset_name", "write_root"]
