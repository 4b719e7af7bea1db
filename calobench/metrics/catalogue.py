"""What every metric name means: its stage, which direction is better, a one-line definition and its source.

    describe(name) -> MetricInfo      (CalobenchError for a name the catalogue does not know)
    lookup(name) -> MetricInfo | None
    PATTERNS                          the name patterns, for `calobench metrics`

Names are matched exactly (``fpd``, ``auc_low``) or by pattern: ``sep_<feature>``,
``chi2_<feature>``, ``js_<feature>``, ``w1_<feature>`` for every feature and per-cell spectrum of
calobench.metrics.features (``<feature>`` itself matched against FEATURES: ``e_layer_<L>``,
``ec_eta_<L>``, ...), ``resolution_<a|b|c>_<gen|ref|diff>``. The definitions are those of
docs/metrics.md; a new metric needs an entry here (tests/test_metric_catalogue.py fails without one).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from calobench.errors import CalobenchError

#: Directions: which values are better.
LOWER = "lower"
HIGHER = "higher"
CLOSER_HALF = "closer to 0.5"
CLOSER_ZERO = "closer to 0"
CLOSER_ONE = "closer to 1"
NONE = "none (fit parameter)"
DIRECTIONS = (LOWER, HIGHER, CLOSER_HALF, CLOSER_ZERO, CLOSER_ONE, NONE)

DOC = "docs/metrics.md"
CHALLENGE = "CaloChallenge, arXiv:2410.21611"


@dataclass(frozen=True)
class MetricInfo:
    """name: the metric's name in Result.metrics. stage: its --metrics stage (hist, resolution, fpd,
    prdc, cls-high, cls-xgb, cls-low). direction: one of DIRECTIONS. description: one line.
    source: where the definition is (a docs/metrics.md section and the publication it follows)."""

    name: str
    stage: str
    direction: str
    description: str
    source: str

    def to_dict(self) -> dict:
        return {"name": self.name, "stage": self.stage, "direction": self.direction,
                "description": self.description, "source": self.source}


@dataclass(frozen=True)
class Pattern:
    """A family of metric names. pattern: as shown to users (``sep_<feature>``); regex: full match,
    group ``feature`` (if any) described through FEATURES; description: a format string with
    ``{feature}`` (the feature's description) and the regex's other named groups."""

    pattern: str
    regex: str
    stage: str
    direction: str
    description: str
    source: str


#: Features and per-cell spectra of calobench.metrics.features: (regex, description with {L} the layer).
FEATURES: tuple[tuple[str, str], ...] = (
    (r"etot", "total energy E_tot (MeV)"),
    (r"etot_einc", "response E_tot / E_inc"),
    (r"n_hit", "number of cells above threshold"),
    (r"e_layer_(?P<L>\d+)", "energy of layer {L} (MeV)"),
    (r"ec_(?P<axis>eta|phi|r|x|y)_(?P<L>\d+)", "centre of energy in {axis} of layer {L} (mm)"),
    (r"width_(?P<axis>eta|phi|r|x|y)_(?P<L>\d+)", "energy-weighted width in {axis} of layer {L} (mm)"),
    (r"sparsity_(?P<L>\d+)", "fraction of empty cells of layer {L}"),
    (r"e(?P<k>\d+)x(?P=k)", "energy fraction in the central {k}x{k} crystals"),
    (r"second_moment", "second moment sum E r^2 / sum E (mm^2)"),
    (r"lateral_moment", "lateral moment (BESIII/BaBar definition)"),
    (r"zernike_a(?P<nm>20|42)", "Zernike moment |A{nm}|"),
    (r"ec_(?P<axis>x|y|z)", "centre of energy in {axis} of the whole shower (mm)"),
    (r"bary_(?P<axis>x|y|z|r|phi)", "energy-weighted barycentre {axis}"),
    (r"depth_mean", "energy-weighted mean depth R - R_inner (mm)"),
    (r"width_lateral", "energy-weighted RMS distance from the shower axis (mm)"),
    (r"voxel_energy", "spectrum of the cell energies above threshold (MeV)"),
    (r"cell_energy", "spectrum of the hit-cell energies (MeV)"),
    (r"profile_long", "longitudinal profile R - R_inner, energy-weighted (mm)"),
    (r"profile_radial", "radial profile around the shower axis, energy-weighted (mm)"),
    (r"profile_rphi", "azimuthal profile R dphi, energy-weighted (mm)"),
    (r"profile_z", "profile in z - z_bary, energy-weighted (mm)"),
)

_HIST_SOURCE = f"{DOC}#one-dimensional-distances-hist"
_RES_SOURCE = f"{DOC}#energy-response-and-resolution-resolution; sigma/E = a/sqrt(E) (+) b (+) c/E"
_MULTI_SOURCE = f"{DOC}#multivariate-fpd-prdc"
_CLS_SOURCE = f"{DOC}#classifiers-cls-high-cls-xgb-cls-low; {CHALLENGE}"

_G4EQ_SOURCE = (f"{DOC}#equivalent-geant4-statistics-g4_equivalent_events; KS scaling of the CMS HGCal "
                "fast-simulation challenge evaluation")

PATTERNS: tuple[Pattern, ...] = (
    Pattern("g4_equivalent_events", r"g4_equivalent_events", "hist", HIGHER,
            "as good as N Geant4 showers: N = c^2 / mean excess KS D^2 over the features (capped at the "
            "reference size)", _G4EQ_SOURCE),
    Pattern("g4_equivalent_events_min", r"g4_equivalent_events_min", "hist", HIGHER,
            "equivalent Geant4 showers of the worst-modelled single feature (capped at the reference size)",
            _G4EQ_SOURCE),
    Pattern("sep_mean", r"sep_mean", "hist", LOWER,
            "mean separation power over all features (0 identical, 1 disjoint)", _HIST_SOURCE),
    Pattern("sep_<feature>", r"sep_(?P<feature>\w+)", "hist", LOWER,
            "separation power 0.5 sum (p-q)^2/(p+q) of the {feature} histograms (0 identical, 1 disjoint)",
            f"{_HIST_SOURCE}; eq. 15 of arXiv:2009.03796; {CHALLENGE}"),
    Pattern("chi2_<feature>", r"chi2_(?P<feature>\w+)", "hist", LOWER,
            "two-sample chi2 per degree of freedom of the {feature} histograms (about 1: statistical agreement)",
            f"{_HIST_SOURCE}; ROOT TH1::Chi2Test option UU"),
    Pattern("js_<feature>", r"js_(?P<feature>\w+)", "hist", LOWER,
            "Jensen-Shannon divergence in bits of the {feature} histograms (0 identical, 1 disjoint)",
            _HIST_SOURCE),
    Pattern("w1_<feature>", r"w1_(?P<feature>\w+)", "hist", LOWER,
            "Wasserstein-1 distance of the binned {feature} distributions (in the feature's unit)",
            _HIST_SOURCE),
    Pattern("resolution_<a|b|c>_gen", r"resolution_(?P<p>[abc])_gen", "resolution", NONE,
            "resolution-fit parameter {p} of the generated showers (a: stochastic, b: constant, c: noise term)",
            _RES_SOURCE),
    Pattern("resolution_<a|b|c>_ref", r"resolution_(?P<p>[abc])_ref", "resolution", NONE,
            "resolution-fit parameter {p} of the reference showers (a: stochastic, b: constant, c: noise term)",
            _RES_SOURCE),
    Pattern("resolution_<a|b|c>_diff", r"resolution_(?P<p>[abc])_diff", "resolution", CLOSER_ZERO,
            "resolution-fit parameter {p}, generated minus reference", _RES_SOURCE),
    Pattern("response_max_diff", r"response_max_diff", "resolution", CLOSER_ZERO,
            "largest per-E_inc-bin difference of the mean response E_tot/E_inc, generated minus reference",
            _RES_SOURCE),
    Pattern("resolution_max_diff", r"resolution_max_diff", "resolution", CLOSER_ZERO,
            "largest per-E_inc-bin difference of sigma/E, generated minus reference", _RES_SOURCE),
    Pattern("fpd", r"fpd", "fpd", LOWER,
            "Frechet physics distance of the high-level vectors (0 identical)",
            f"{_MULTI_SOURCE}; Kansal et al., arXiv:2211.10295 (jetnet 0.2.5)"),
    Pattern("kpd", r"kpd", "fpd", LOWER,
            "kernel physics distance (unbiased MMD, polynomial kernel (x.y / d + 1)^4) of the high-level vectors (about 0 identical)",
            f"{_MULTI_SOURCE}; Kansal et al., arXiv:2211.10295 (jetnet 0.2.5)"),
    Pattern("precision", r"precision", "prdc", HIGHER,
            "fraction of generated events inside the reference's k=5 neighbourhoods (fidelity)",
            f"{_MULTI_SOURCE}; Naeem et al., arXiv:2002.09797"),
    Pattern("recall", r"recall", "prdc", HIGHER,
            "fraction of reference events inside the generated k=5 neighbourhoods (diversity)",
            f"{_MULTI_SOURCE}; Naeem et al., arXiv:2002.09797"),
    Pattern("density", r"density", "prdc", CLOSER_ONE,
            "mean number of reference neighbourhoods holding a generated event, over k (1 for equal samples)",
            f"{_MULTI_SOURCE}; Naeem et al., arXiv:2002.09797"),
    Pattern("coverage", r"coverage", "prdc", HIGHER,
            "fraction of reference neighbourhoods holding at least one generated event",
            f"{_MULTI_SOURCE}; Naeem et al., arXiv:2002.09797"),
    Pattern("auc_high", r"auc_high", "cls-high", CLOSER_HALF,
            "ROC AUC of a DNN telling generated from reference on the high-level vector (0.5: indistinguishable)",
            _CLS_SOURCE),
    Pattern("jsd_high", r"jsd_high", "cls-high", LOWER,
            "JSD (ln 2 - BCE)/ln 2 of the high-level DNN classifier (0: indistinguishable)", _CLS_SOURCE),
    Pattern("auc_high_xgb", r"auc_high_xgb", "cls-xgb", CLOSER_HALF,
            "ROC AUC of xgboost trees on the high-level vector (0.5: indistinguishable)", _CLS_SOURCE),
    Pattern("jsd_high_xgb", r"jsd_high_xgb", "cls-xgb", LOWER,
            "JSD (ln 2 - BCE)/ln 2 of the xgboost classifier (0: indistinguishable)", _CLS_SOURCE),
    Pattern("auc_low", r"auc_low", "cls-low", CLOSER_HALF,
            "ROC AUC of a DNN on the cells / E_inc (0.5: indistinguishable)", _CLS_SOURCE),
    Pattern("jsd_low", r"jsd_low", "cls-low", LOWER,
            "JSD (ln 2 - BCE)/ln 2 of the low-level DNN classifier (0: indistinguishable)", _CLS_SOURCE),
)


def _feature(name: str) -> str | None:
    """Description of a feature or spectrum name (FEATURES), None when unknown."""
    for regex, text in FEATURES:
        match = re.fullmatch(regex, name)
        if match:
            return text.format(**match.groupdict())
    return None


def lookup(name: str) -> MetricInfo | None:
    """The MetricInfo of a metric name, or None when no pattern (with a known feature) matches.
    Exact names are tried before the patterns with a ``<feature>``."""
    for pattern in sorted(PATTERNS, key=lambda p: "<feature>" in p.pattern):
        match = re.fullmatch(pattern.regex, name)
        if not match:
            continue
        groups = match.groupdict()
        if "feature" in groups:
            feature = _feature(groups["feature"])
            if feature is None:
                continue
            groups["feature"] = feature
        return MetricInfo(name, pattern.stage, pattern.direction, pattern.description.format(**groups),
                          pattern.source)
    return None


def describe(name: str) -> MetricInfo:
    """The MetricInfo of a metric name; a CalobenchError naming it when the catalogue does not know it."""
    info = lookup(name)
    if info is None:
        raise CalobenchError(f"metric {name!r}: not in the metric catalogue (calobench/metrics/catalogue.py); "
                             f"`calobench metrics` lists the known names")
    return info


def catalogue_rows() -> list[dict]:
    """One dict per pattern (pattern, stage, direction, description, source), for `calobench metrics`;
    ``{feature}`` is left as ``<feature>`` (see FEATURES)."""
    return [{"pattern": p.pattern, "stage": p.stage, "direction": p.direction,
             "description": p.description.replace("{feature}", "<feature>").replace("{p}", "a/b/c"),
             "source": p.source} for p in PATTERNS]


def feature_rows() -> list[dict]:
    """One dict per feature pattern (feature, description) for the ``<feature>`` of the hist metrics."""
    readable = {r"(?P<L>\d+)": "<L>", r"(?P<axis>eta|phi|r|x|y)": "<eta|phi|r|x|y>",
                r"(?P<axis>x|y|z)": "<x|y|z>", r"(?P<axis>x|y|z|r|phi)": "<x|y|z|r|phi>",
                r"(?P<k>\d+)x(?P=k)": "<k>x<k>", r"(?P<nm>20|42)": "<20|42>"}
    rows = []
    for regex, text in FEATURES:
        shown = regex
        for raw, nice in readable.items():
            shown = shown.replace(raw, nice)
        rows.append({"feature": shown, "description": re.sub(r"\{(\w+)\}", r"<\1>", text)})
    return rows


__all__ = ["DIRECTIONS", "FEATURES", "MetricInfo", "PATTERNS", "catalogue_rows", "describe", "feature_rows",
           "lookup"]
