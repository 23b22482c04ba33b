"""RadBench's headless core: loading, preprocessing backends, model runtime, timing, batch and benchmark (no Qt)."""

import os

# Numba's OpenMP workers sleep as soon as a parallel loop ends instead of spinning (see
# radbench.inference.backends.numba_jit.inputs). Set here, on the core's first import, because OpenMP reads it once,
# when the first parallel loop or thread-count change loads it. A user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
