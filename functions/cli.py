"""`opsseer db` commands."""

import click
from sqlalchemy.exc import OperationalError

from functions import migrations
from functions.settings import SettingsError, get_settings


@click.group("db")
def db_group() -> None:
    """Manage the incident store schema."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Alembic revision to upgrade to.")
def upgrade_command(revision: str) -> None:
    """Apply the schema migrations to the database at OPSSEER_DATABASE_URL."""
    try:
        url = get_settings().database_url
        migrations.upgrade(url, revision)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    except OperationalError as exc:
        raise click.ClickException(f"cannot reach the database at OPSSEER_DATABASE_URL: {exc.orig}") from None
    click.echo(f"database schema upgraded to {revision}")


@db_group.command("downgrade")
@click.argument("revision")
def downgrade_command(revision: str) -> None:
    """Revert the schema to REVISION (use "base" to drop every table)."""
    try:
        migrations.downgrade(get_settings().database_url, revision)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    except OperationalError as exc:
        raise click.ClickException(f"cannot reach the database at OPSSEER_DATABASE_URL: {exc.orig}") from None
    click.echo(f"database schema downgraded to {revision}")
