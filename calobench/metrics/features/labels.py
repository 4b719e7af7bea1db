"""Physical names and units of every feature and spectrum, for axis labels and tables.

``feature_label(name)`` -> (label, unit); unit "" for dimensionless quantities. Names follow
the extractors of this package (grid, cylindrical, point cloud); an unknown name is returned
as its own label with no unit, so a new feature never breaks a report.
"""

from __future__ import annotations

import re

#: exact name -> (label, unit)
_EXACT: dict[str, tuple[str, str]] = {
    "etot": ("total deposited energy E_tot", "MeV"),
    "etot_einc": ("E_tot / E_inc", ""),
    "n_hit": ("cells above threshold", ""),
    "second_moment": ("second lateral moment sum E r^2 / sum E", "mm^2"),
    "lateral_moment": ("lateral moment (E_1, E_2 excluded)", ""),
    "zernike_a20": ("Zernike moment |A_20|", ""),
    "zernike_a42": ("Zernike moment |A_42|", ""),
    "ec_x": ("energy centre x", "mm"),
    "ec_y": ("energy centre y", "mm"),
    "ec_z": ("energy centre z (depth)", "mm"),
    "bary_x": ("energy barycentre x", "mm"),
    "bary_y": ("energy barycentre y", "mm"),
    "bary_z": ("energy barycentre z", "mm"),
    "bary_r": ("energy barycentre radius R", "mm"),
    "bary_phi": ("energy barycentre azimuth phi", "rad"),
    "depth_mean": ("mean depth R - R_inner (energy-weighted)", "mm"),
    "width_lateral": ("lateral width (RMS distance from the shower axis)", "mm"),
    "voxel_energy": ("cell energy", "MeV"),
    "cell_energy": ("cell energy", "MeV"),
    "profile_long": ("longitudinal profile R - R_inner (energy-weighted)", "mm"),
    "profile_radial": ("radial profile: distance from the shower axis (energy-weighted)", "mm"),
    "profile_rphi": ("r-phi profile R (phi - phi_bary) (energy-weighted)", "mm"),
    "profile_z": ("z profile z - z_bary (energy-weighted)", "mm"),
}

#: (pattern, label template, unit); groups of the pattern fill the template
_PATTERNS: list[tuple[str, str, str]] = [
    (r"e(\d+)x\1", "energy fraction in the central {0}x{0} crystals", ""),
    (r"e_layer_(\d+)", "energy in layer {0}", "MeV"),
    (r"ec_(x|y|eta|phi|r)_(\d+)", "energy centre in {0}, layer {1}", "mm"),
    (r"width_(x|y|eta|phi|r)_(\d+)", "shower width in {0}, layer {1}", "mm"),
    (r"sparsity_(\d+)", "fraction of empty cells, layer {0}", ""),
]


def feature_label(name: str) -> tuple[str, str]:
    """(physical label, unit) of a feature or spectrum name; (name, "") when unknown."""
    if name in _EXACT:
        return _EXACT[name]
    for pattern, template, unit in _PATTERNS:
        match = re.fullmatch(pattern, name)
        if match:
            return template.format(*match.groups()), unit
    return name, ""


def axis_label(name: str) -> str:
    """'label [unit]' (or just the label when dimensionless) for a plot axis."""
    label, unit = feature_label(name)
    return f"{label} [{unit}]" if unit else label
