"""Side-by-side benchmarks of Atlas; run one with ``python -m bench.<name>``."""
