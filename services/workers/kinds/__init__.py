"""The built-in job kinds; importing this package registers their handlers."""

from . import box_import, inspect, webhook

__all__ = ["box_import", "inspect", "webhook"]
