"""`python -m calobench` runs the command line."""

from .cli import entry

entry()
