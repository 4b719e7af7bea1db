"""Per-event features of showers, one extractor per geometry kind (see common.FeatureExtractor)."""

from __future__ import annotations

from calobench.data.geometry import CYLINDRICAL, GRID, POINTCLOUD, Geometry
from calobench.metrics.features.common import FeatureExtractor
from calobench.metrics.features.cylindrical import CylindricalFeatures
from calobench.metrics.features.grid import GridFeatures
from calobench.metrics.features.pointcloud import PointCloudFeatures

EXTRACTORS: dict[str, type[FeatureExtractor]] = {
    GRID: GridFeatures, CYLINDRICAL: CylindricalFeatures, POINTCLOUD: PointCloudFeatures,
}


def feature_extractor(geometry: Geometry, condition_names: tuple[str, ...] = ()) -> FeatureExtractor:
    """The feature extractor of ``geometry``'s kind; ``condition_names`` are appended to the
    high-level vector and the low-level input."""
    return EXTRACTORS[geometry.kind](geometry, condition_names)


__all__ = ["CylindricalFeatures", "EXTRACTORS", "FeatureExtractor", "GridFeatures", "PointCloudFeatures",
           "feature_extractor"]
