"""`python -m webproxy`: the same as the `webproxy` command."""

from webproxy.cli import main

raise SystemExit(main())
