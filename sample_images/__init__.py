"""Small real scans bundled with RadBench (package data; provenance and licenses in README.md).

Nothing imports this module: :mod:`radbench.app.samples` finds the folder with ``importlib.util.find_spec``, so
that no ``__pycache__`` folder appears among the scans a user opens with ``radbench sample_images/*``.
"""
