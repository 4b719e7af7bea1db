"""Evaluation metrics: features, 1-d distances, FPD/KPD/PRDC, classifier tests, resolution.

Entry point: ``compare(generated, reference, ...) -> Result`` (calobench.metrics.compare).
"""

from calobench.metrics.compare import STAGES, compare
from calobench.metrics.features import FeatureExtractor
from calobench.metrics.result import Result

__all__ = ["FeatureExtractor", "Result", "STAGES", "compare"]
