"""CLI verbs, one module each (discovered by calobench.cli)."""
