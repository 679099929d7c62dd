"""Launching authored runs."""

from runtime_core.launcher._launcher import LaunchedRun, Launcher, LaunchError

__all__ = ["LaunchError", "LaunchedRun", "Launcher"]
