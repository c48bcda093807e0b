"""The ``dp-sandbox`` command line.

Every command takes ``--home`` (or ``DPS_HOME``); commands that print results
take ``--json``. Errors go to stderr with a non-zero exit (with ``--json`` the
error shape is also printed on stdout). ``--as USER`` names the accountable
person; commands without it act as the local administrator (the person with
access to the home directory), recorded as ``local:<login>``. Every decision is
``NOUN decide ID VERB [--reason TEXT]`` (``sandbox.cli.decisions``).

The CLI sits at the edge: its modules import only click at the top, and each
command imports the runtime it needs in its body, so ``dp-sandbox --help``
loads no database, engine or web code (a test checks it).

- ``root``: the ``dp-sandbox`` group, with the commands of ``web`` and
  ``products`` added through the ``dp_sandbox.cli`` entry points on first use;
- ``options``: ``--home``, ``--json``, ``--as``, opening the instance, errors;
- ``output``: JSON and table printing;
- ``decisions``: the one decision grammar and the older spellings;
- ``admin``, ``datasets``, ``queries``: the runtime's own commands.
"""

from sandbox.cli.root import main

__all__ = ["main"]
