"""Alembic environment: run migrations online against the configured URL."""

from alembic import context
from sqlalchemy import create_engine, pool

from functions.models import Base

config = context.config


def run_migrations_online() -> None:
    engine = create_engine(config.get_main_option("sqlalchemy.url"), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=Base.metadata, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported: run `opsseer db upgrade` against a live database")
run_migrations_online()
