"""RadBench's headless core: loading, preprocessing backends, model runtime, timing, batch and benchmark (no Qt)."""
