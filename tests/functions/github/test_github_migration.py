"""The GitHub migration upgrades and downgrades cleanly on a database of its own."""

from sqlalchemy import create_engine, inspect

from functions import migrations

DATABASE = "opsseer_github_migration"


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_github_tables_upgrade_and_downgrade(stack):
    with stack.cluster_admin() as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
        admin.execute(f"CREATE DATABASE {DATABASE}")
    url = stack.cluster.url_for(DATABASE)
    try:
        migrations.upgrade(url)
        assert {"github_issues", "github_comments", "incidents"} <= _tables(url)

        migrations.downgrade(url, "0001")
        tables = _tables(url)
        assert "github_issues" not in tables
        assert "github_comments" not in tables
        assert "incidents" in tables

        migrations.upgrade(url)
        assert {"github_issues", "github_comments"} <= _tables(url)
    finally:
        with stack.cluster_admin() as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
