"""``edge-deeplab models``: what the SDK knows and what this machine can run."""
from __future__ import annotations

import json

import click

from edge_deeplab.converters import FORMATS
from edge_deeplab.models import BACKBONES, HEADS
from edge_deeplab.runtimes import RUNTIMES
from edge_deeplab.zoo import ZOO


def runtime_status() -> list[dict]:
    rows = []
    for entry in RUNTIMES:
        reason = entry.load().unavailable_reason()
        row = {"name": entry.name, "available": reason is None}
        if reason is not None:
            row["reason"] = reason
        rows.append(row)
    return rows


def inventory() -> dict:
    return {"zoo": ZOO.names(), "backbones": BACKBONES.names(), "heads": HEADS.names(),
            "formats": FORMATS.names(), "runtimes": runtime_status()}


@click.command("models")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def command(as_json: bool) -> None:
    """List zoo models, backbones, heads, export formats and runtimes (and which run here)."""
    info = inventory()
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    click.echo("zoo:")
    for entry in ZOO:
        click.echo(f"  {entry.name:<24} {entry.summary}")
    for title, registry in (("backbones", BACKBONES), ("heads", HEADS), ("formats", FORMATS)):
        click.echo(f"{title}:")
        for entry in registry:
            click.echo(f"  {entry.name:<24} {entry.summary}")
    click.echo("runtimes:")
    for row in info["runtimes"]:
        state = "available" if row["available"] else f"unavailable: {row['reason']}"
        click.echo(f"  {row['name']:<24} {state}")
