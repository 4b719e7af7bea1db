"""Evaluation metrics: features, 1-d distances, FPD/KPD/PRDC, classifier tests, resolution.

Entry point: ``compare(generated, reference, ...) -> Result`` (calobench.metrics.compare).
"""

from .compare import STAGES, compare
from .features import FeatureExtractor
from .result import Result

__all__ = ["FeatureExtractor", "Result", "STAGES", "compare"]
