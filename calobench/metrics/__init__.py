"""Evaluation metrics as stages: features, 1-d distances, resolution, FPD/KPD, PRDC, classifier tests.

Entry point: ``evaluate(generated, reference, EvaluationOptions(...)) -> Result`` on ShowerSets
(calobench.metrics.evaluate); the stage contract is calobench.metrics.stage. The public
``calobench.compare`` (paths, JSON, report) is calobench.api.compare.
"""

from calobench.metrics.classifier_tests import ClassifierOptions
from calobench.metrics.evaluate import STAGES, EvaluationOptions, ProgressLog, evaluate, parse_stages
from calobench.metrics.features import FeatureExtractor, feature_extractor
from calobench.metrics.result import Result
from calobench.metrics.stage import Chunk, Stage

#: Version of the metric definitions: part of every leaderboard entry's benchmark version; a
#: change that moves any number bumps it.
METRICS_VERSION = "2"

__all__ = ["METRICS_VERSION", "STAGES", "Chunk", "ClassifierOptions", "EvaluationOptions", "FeatureExtractor",
           "ProgressLog", "Result", "Stage", "evaluate", "feature_extractor", "parse_stages"]
