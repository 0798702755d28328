"""The `opsseer` command: each subcommand lives beside the part it runs."""

import logging

import click

from eval.cli import eval_command
from functions.cli import db_group
from functions.slack.socket_mode import slack_socket_command
from opsseer.server import api_command
from opsseer.demo import demo_command
from opsseer.stack import purge_command, up_command
from toyprod.cli import chaos_command, load_command, toyprod_command


@click.group()
@click.option("--log-level", default="INFO", show_default=True, help="Log level for OpsSeer's own loggers.")
def cli(log_level: str) -> None:
    """OpsSeer: self-hosted incident response for SRE teams."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # httpx logs every request at INFO, which would drown the readiness probes' and the load's progress.
    logging.getLogger("httpx").setLevel(logging.WARNING)


cli.add_command(api_command)
cli.add_command(db_group)
cli.add_command(up_command)
cli.add_command(purge_command)
cli.add_command(demo_command)
cli.add_command(toyprod_command)
cli.add_command(load_command)
cli.add_command(chaos_command)
cli.add_command(slack_socket_command)
cli.add_command(eval_command)


def main() -> None:
    cli()
