"""Scenario files: run authored workflows end to end and check what comes out."""

from runtime_bootstrap.scenarios._expect import check_expect, matches
from runtime_bootstrap.scenarios._runner import ScenarioError, collect_files, load_scenario, run_scenario

__all__ = ["ScenarioError", "check_expect", "collect_files", "load_scenario", "matches", "run_scenario"]
