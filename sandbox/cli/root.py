"""The ``dp-sandbox`` group: the runtime's own commands, and those of the
packages above ``sandbox/`` (``web``, ``products``), which register themselves
through the ``dp_sandbox.cli`` entry-point group so that the runtime never
imports them by name. They are loaded the first time the group looks up or
lists its commands, not when ``sandbox.cli`` is imported."""

from __future__ import annotations

import click

from sandbox.cli import admin, datasets, notifications, operations, queries


class PluginGroup(click.Group):
    """A group that adds the entry-point commands on first use."""

    entry_point_group = "dp_sandbox.cli"
    _plugins_loaded = False

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        from importlib.metadata import entry_points

        for ep in entry_points(group=self.entry_point_group):
            ep.load()(self)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        self._load_plugins()
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load_plugins()
        return super().list_commands(ctx)


@click.group(cls=PluginGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="dp-sandbox")
def main() -> None:
    """dp-sandbox: differentially private queries over sensitive public data,
    reviewed and released as signed data products.

    Every decision has one shape: NOUN decide ID VERB [--reason TEXT] --as USER
    (product, template, approval, request, share, share change); see docs/cli.md."""


for module in (admin, datasets, notifications, operations, queries):
    for command in module.COMMANDS:
        main.add_command(command)
