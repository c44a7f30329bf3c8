"""A nameko timer whose interval is an Atlas setting rather than a constant in the code."""

from __future__ import annotations

from typing import Any

from nameko.timer import Timer

from . import config as cfg


class SettingTimer(Timer):
    """Fires every ``ATLAS.<key>`` seconds; an interval of 0 or less turns the timer off."""

    def __init__(self, key: str, **kwargs: Any) -> None:
        super().__init__(interval=0, **kwargs)
        self.key = key

    def setup(self) -> None:
        self.interval = float(cfg.setting(self.container.config, self.key))

    def start(self) -> None:
        if self.interval > 0:
            super().start()

    def stop(self) -> None:
        if self.gt is not None:
            super().stop()

    def kill(self) -> None:
        if self.gt is not None:
            super().kill()


setting_timer = SettingTimer.decorator
