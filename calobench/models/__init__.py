"""Generative models: the Generator plugin base, the registry and the built-in models."""
