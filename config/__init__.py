"""Settings from the environment (12-factor), one typed object for the whole service."""

from config.settings import Settings, SettingsError

__all__ = ["Settings", "SettingsError"]
