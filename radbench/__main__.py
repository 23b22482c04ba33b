"""``python -m radbench``: the same as the ``radbench`` command."""

from radbench.app.cli import main

raise SystemExit(main())
