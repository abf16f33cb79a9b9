"""`Hit` lives in `backends.hit` (backends return it without importing ranker); re-exported here."""

from backends.hit import Hit

__all__ = ["Hit"]
