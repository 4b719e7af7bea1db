"""Parametric baselines: GFlash (Grindhammer-Peters) and the mean shower."""
