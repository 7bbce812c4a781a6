"""The one exception kubectl readiness shows to its user as a sentence (exit code 2); its own module so that
command modules (the dashboard, audit) raise it without importing the CLI that imports them."""

from __future__ import annotations

__all__ = ["CliError"]


class CliError(Exception):
    """An error shown to the user as one sentence."""
