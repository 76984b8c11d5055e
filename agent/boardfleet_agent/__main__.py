"""Allow ``python -m boardfleet_agent``."""

from boardfleet_agent.cli import main

raise SystemExit(main())
