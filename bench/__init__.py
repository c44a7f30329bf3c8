"""Side-by-side benchmarks of Atlas and the peers a user would pick instead."""
