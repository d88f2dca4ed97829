from __future__ import annotations

from resywatch.cli.app import main

main()
