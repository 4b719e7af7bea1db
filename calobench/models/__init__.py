"""Generative models: the Generator plugin base, the registry and the parts models share."""

from calobench.models.base import Generator

__all__ = ["Generator"]
