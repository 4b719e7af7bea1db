"""Autoregressive models: the CEPC cell transformer (docs/models-autoregressive.md)."""
