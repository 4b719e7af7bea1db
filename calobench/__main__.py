"""`python -m calobench` runs the command line."""

from calobench.cli import entry

entry()
