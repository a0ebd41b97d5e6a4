"""The ``telefeatures`` command: one module per command group.

``root`` holds the group and the options every command shares; importing the
others registers their commands on it.
"""

from . import dhcp, doctor, files, lockdown, provision, provision_import, serve, state, tftp  # noqa: F401  (registers the commands)
from .root import cli, main

__all__ = ["cli", "main"]
