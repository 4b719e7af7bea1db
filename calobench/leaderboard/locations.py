"""Where leaderboards live: the curated one shipped with calobench, and the user's own folder.

- curated (read-only): ``calobench/leaderboard/curated/`` inside an installed wheel (setup.py
  copies the repository's top-level ``leaderboards/`` there at build time); in a source or
  editable checkout, the repository's ``leaderboards/`` itself.
- yours: ``$CALOBENCH_LEADERBOARD_DIR`` when set, else
  ``platformdirs.user_data_dir("calobench")/leaderboards`` (e.g. ``~/.local/share/calobench/
  leaderboards`` on Linux). ``calobench run`` records there; ``--leaderboard-dir`` overrides both.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "CALOBENCH_LEADERBOARD_DIR"
_PACKAGE = Path(__file__).resolve().parent


def curated_dir() -> Path | None:
    """The curated leaderboard folder, or None when this installation has none."""
    packaged = _PACKAGE / "curated"
    if packaged.is_dir():
        return packaged
    checkout = _PACKAGE.parents[1] / "leaderboards"
    if checkout.is_dir() and (_PACKAGE.parents[1] / "pyproject.toml").is_file():
        return checkout
    return None


def default_user_dir() -> Path:
    """The platform's per-user data folder for calobench leaderboards (ignores the env var)."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("calobench", appauthor=False)) / "leaderboards"


def user_dir() -> Path:
    """The user's leaderboard folder: $CALOBENCH_LEADERBOARD_DIR, else default_user_dir()."""
    value = os.environ.get(ENV_VAR, "").strip()
    return Path(value).expanduser() if value else default_user_dir()


__all__ = ["ENV_VAR", "curated_dir", "default_user_dir", "user_dir"]
