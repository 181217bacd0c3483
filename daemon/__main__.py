"""``python -m emobridge``: the same as the ``emobridge`` command (handy where the script is not on PATH)."""

from .cli import main

raise SystemExit(main())
