"""``kurspakke course map-quiz`` and ``kurspakke sync progress`` (DESIGN.md §6)."""

from __future__ import annotations

import click


@click.group()
def sync() -> None:
    """Syncs with Canvas run now."""


@click.command("map-quiz")
def map_quiz() -> None:
    """Map a programme module to a quiz (an assignment) of a linked course."""
    raise click.ClickException("not built yet")
