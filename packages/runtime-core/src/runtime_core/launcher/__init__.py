"""Launching authored runs."""

from runtime_core.launcher._launcher import LaunchConflict, LaunchedRun, Launcher, LaunchError, launch_fingerprint, run_id_for_key

__all__ = ["LaunchConflict", "LaunchError", "LaunchedRun", "Launcher", "launch_fingerprint", "run_id_for_key"]
