"""The reference implementations of every model family, one subpackage per family.

They are plugins like any third-party model: each registers through the ``calobench.models``
entry-point group (see pyproject.toml) and uses only the plugin API of calobench.models.
"""
