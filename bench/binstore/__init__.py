"""Binstore beside its peers: nginx for downloads, hashlib for uploads, in one run.

``python -m bench.binstore`` writes ``bench/results-binstore.md``.
"""
