"""RadBench: open medical scans, preprocess them with naive / NumPy / Numba backends, classify with ONNX Runtime,
and time every stage. For education, not for clinical use.

The repository keeps the folders the design names (``app/``, ``inference/``, ``models/``, ``sample_images/``);
installed, they are ``radbench.app``, ``radbench.inference``, ``radbench.models`` and ``radbench.sample_images``.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("radbench")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"
