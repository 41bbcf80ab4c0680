"""Who runs a credential command: the command and the OS account running it (``_``: not a command itself)."""

from __future__ import annotations

import getpass

from workforce.audit import Actor


def command_actor(command: str) -> Actor:
    """``Actor.system("changepassword command (os user alice)")``, like ``pseudonymise_worker``'s actor."""
    try:
        os_user = getpass.getuser()
    except (KeyError, OSError):  # no login name in the environment and none in the password database
        os_user = "unknown"
    return Actor.system(f"{command} command (os user {os_user})")
