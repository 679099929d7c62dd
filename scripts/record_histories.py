"""Record the replay corpus (tests/histories/) from real runs of every passing scenario.

Run only when adding scenario shapes or a new history shape (a patch): an interpreter change
must keep the existing corpus replaying instead. Uses the embedded stack (dev server, temporary
SQLite, in-process worker).

    python scripts/record_histories.py                                    # tests/histories/
    python scripts/record_histories.py tests/histories/local-projections  # another folder
    python scripts/record_histories.py tests/histories/child-waiting NAME...  # only these scenarios
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from runtime_bootstrap._stack import open_stack
from runtime_bootstrap.scenarios import load_scenario, run_scenario
from runtime_bootstrap.settings import AppSettings

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.scenario_expectations import EXPECTED_FAILURES  # noqa: E402

OUT = ROOT / "tests" / "histories"
FOLDERS = (ROOT / "tests" / "scenarios", ROOT.parent / "shared" / "scenarios")


async def main(out: Path, only: set[str] | None = None) -> None:
    """Run each scenario (or those named in ``only``) and write one history file per run of its tree into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    files = [p for folder in FOLDERS if folder.is_dir() for p in sorted(folder.glob("*.json"))]
    async with open_stack(AppSettings.from_env()) as stack:
        for path in files:
            scenario = load_scenario(path)
            if scenario["name"] in EXPECTED_FAILURES or (only and scenario["name"] not in only):
                continue
            outcome = await run_scenario(stack, scenario)
            if outcome["run"] is None:
                continue
            todo = [(scenario["name"], outcome["run"])]
            while todo:
                label, run = todo.pop()
                handle = stack.client.get_workflow_handle(f"workflow-runtime-v2:run:{run['runId']}")
                first = (await handle.describe()).raw_description.workflow_execution_info.first_run_id
                history = await stack.client.get_workflow_handle(handle.id, run_id=first or None).fetch_history()
                (out / f"{label}.json").write_text(json.dumps({"workflowId": handle.id, "history": json.loads(history.to_json())}) + "\n")
                print(f"recorded {label}")
                todo.extend((f"{label}--child{i}", child) for i, child in enumerate(run["children"]))


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else OUT, set(sys.argv[2:]) or None))
