"""The versioned leaderboard: one JSON file per dataset, a JSON Schema, ranking, published rows.

See docs/leaderboard.md. Files live in ``leaderboards/`` (the CLI's --leaderboard-dir).
"""

from calobench.leaderboard.entry import benchmark_version, config_hash, make_entry, metrics_version
from calobench.leaderboard.published import published_rows
from calobench.leaderboard.ranking import CLASSIFIERS, failure, rank, score
from calobench.leaderboard.store import (DEFAULT_DIR, SCHEMA_VERSION, add_entry, leaderboard_path, read_leaderboard, schema,
                    validate_directory, validate_entry, validation_errors)

__all__ = ["CLASSIFIERS", "DEFAULT_DIR", "SCHEMA_VERSION", "failure", "add_entry", "benchmark_version", "config_hash",
           "leaderboard_path", "make_entry", "metrics_version", "published_rows", "rank", "read_leaderboard",
           "schema", "score", "validate_directory", "validate_entry", "validation_errors"]
