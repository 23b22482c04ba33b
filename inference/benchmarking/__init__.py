"""Timing the preprocessing backends and the model: ``radbench bench`` (:mod:`.runner`), the desktop app's Compare
all (:mod:`.compare`) and ``radbench profile`` (:mod:`.profiling`)."""
