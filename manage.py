#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

from __future__ import annotations

import os
import sys


def main() -> None:
    if sys.argv[1:2] == ["aggregate"]:
        # a plain `aggregate` call needs no Django set-up (about 0.5 s); anything else (--help,
        # common options, usage errors) falls through to Django
        from tasks.aggregation.cli import fast_main

        code = fast_main(sys.argv[2:])
        if code is not None:
            sys.exit(code)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
