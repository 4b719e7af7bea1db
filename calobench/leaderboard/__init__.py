"""The versioned leaderboard: one JSON file per entry, a JSON Schema, ranking, published rows.

See docs/leaderboard.md. Entries live in ``<folder>/<dataset>/<entry-id>.json``; the curated
leaderboard ships with calobench (read-only), a user's runs go to their own folder (locations.py).
"""

from calobench.leaderboard.entry import benchmark_version, config_hash, make_entry, metrics_version, new_entry_id
from calobench.leaderboard.frame import sourced_entries, table
from calobench.leaderboard.locations import ENV_VAR, curated_dir, default_user_dir, user_dir
from calobench.leaderboard.migrate import migrate_directory
from calobench.leaderboard.published import published_rows
from calobench.leaderboard.ranking import CLASSIFIERS, failure, rank, score
from calobench.leaderboard.store import (SCHEMA_VERSION, add_entry, check_layout, dataset_dir, read_entries,
                                         read_entry, read_leaderboard, schema, validate_directory, validate_entry,
                                         validation_errors)

__all__ = ["CLASSIFIERS", "ENV_VAR", "SCHEMA_VERSION", "add_entry", "benchmark_version", "check_layout", "config_hash",
           "curated_dir", "dataset_dir", "default_user_dir", "failure", "make_entry", "metrics_version",
           "migrate_directory", "new_entry_id", "published_rows", "rank", "read_entries", "read_entry",
           "read_leaderboard", "schema", "score", "sourced_entries", "table", "user_dir", "validate_directory",
           "validate_entry", "validation_errors"]
