"""Build hook: ship the repository's curated ``leaderboards/`` as package data.

The curated leaderboard is kept at the top of the repository (one pull request = one entry file
in ``leaderboards/<dataset>/``); in a wheel it lives at ``calobench/leaderboard/curated/``
(read by calobench.leaderboard.locations.curated_dir). Everything else is in pyproject.toml.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

CURATED_SOURCE = Path(__file__).resolve().parent / "leaderboards"
CURATED_TARGET = Path("calobench") / "leaderboard" / "curated"


def copy_curated(build_lib: str | Path) -> list[Path]:
    """Copy leaderboards/schema.json and leaderboards/<dataset>/*.json to <build_lib>/calobench/leaderboard/curated/."""
    target = Path(build_lib) / CURATED_TARGET
    if target.exists():
        shutil.rmtree(target)
    copied = []
    for source in sorted(CURATED_SOURCE.rglob("*.json")):
        relative = source.relative_to(CURATED_SOURCE)
        if any(part.startswith(".") for part in relative.parts):
            continue  # temporary files of an interrupted writer
        (target / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target / relative)
        copied.append(target / relative)
    return copied


class build_py_with_curated(build_py):
    """build_py, then the curated leaderboard as package data."""

    def run(self) -> None:
        super().run()
        copy_curated(self.build_lib)


if __name__ == "__main__":  # setuptools' build backend runs this file as __main__
    setup(cmdclass={"build_py": build_py_with_curated})
