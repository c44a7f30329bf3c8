"""Binstore: box file uploads and downloads over HTTP, stored by content."""
