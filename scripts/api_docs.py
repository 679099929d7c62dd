"""Rewrite the generated route table of docs/api.md from the app's OpenAPI document.

    python scripts/api_docs.py           # rewrite docs/api.md
    python scripts/api_docs.py --check   # exit 1 if docs/api.md is stale (tests/test_api.py checks it too)
"""

from __future__ import annotations

import sys
from pathlib import Path

from runtime_bootstrap.api import create_app
from runtime_bootstrap.api._docs import render_routes, replace_generated

DOC = Path(__file__).resolve().parent.parent / "docs" / "api.md"


def main() -> int:
    text = DOC.read_text(encoding="utf-8")
    fresh = replace_generated(text, render_routes(create_app(None).openapi()))
    if "--check" in sys.argv[1:]:
        if fresh != text:
            print(f"{DOC} is stale: run python scripts/api_docs.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(fresh, encoding="utf-8")
    print(f"wrote the route table of {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
