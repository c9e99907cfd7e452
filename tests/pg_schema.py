"""A throwaway PostgreSQL schema in database `test` on 127.0.0.1:5432 (as in
tests/test_migrations.py), for tests that run the app on PostgreSQL as well."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

PG_HOST, PG_PORT, PG_DB = "127.0.0.1", 5432, "test"


@contextmanager
def throwaway_schema(tag: str = "chargers_test", user: str | None = None) -> Iterator[str]:
    """The SQLAlchemy URL of a new schema (search_path), dropped afterwards; skips the
    test when no server answers. A schema rather than a database: the test role may
    not create databases, and the search_path puts every table (alembic_version too)
    into it. `user` names the role in the URL (for subprocesses run as another user)."""
    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect(host=PG_HOST, port=PG_PORT, dbname=PG_DB, connect_timeout=3,
                                autocommit=True)
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL server answers at {PG_HOST}:{PG_PORT} database {PG_DB!r} "
                    f"({str(exc).strip().splitlines()[0]})")
    schema = f"{tag}_{secrets.token_hex(4)}"
    admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        login = f"{user}@" if user else ""
        yield (f"postgresql+psycopg://{login}{PG_HOST}:{PG_PORT}/{PG_DB}"
               f"?options=-csearch_path%3D{schema}")
    finally:
        admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        admin.close()


def schema_of(url: str) -> str:
    """The schema name in a URL made by throwaway_schema."""
    return url.rsplit("search_path%3D", 1)[1]


def on_sqlite_and_postgresql(tag: str):
    """An `app_config` fixture for a test module: every test runs on SQLite, then on
    PostgreSQL (a throwaway schema named after `tag`). In the module:
    `app_config = on_sqlite_and_postgresql("chargers_x")`."""

    @pytest.fixture(params=["sqlite", "postgresql"], name="app_config")
    def _app_config(app_config, request):
        if request.param == "sqlite":
            yield app_config
            return
        with throwaway_schema(tag) as url:
            app_config["SQLALCHEMY_DATABASE_URI"] = url
            yield app_config

    return _app_config


def on_postgresql(tag: str):
    """`pg_schema` and `app_config` fixtures for a test module that runs on PostgreSQL
    only (a throwaway schema named after `tag`). In the module:
    `pg_schema, app_config = on_postgresql("chargers_x")`."""

    @pytest.fixture(name="pg_schema")
    def _pg_schema():
        with throwaway_schema(tag) as url:
            yield url

    @pytest.fixture(name="app_config")
    def _app_config(app_config, pg_schema):
        app_config["SQLALCHEMY_DATABASE_URI"] = pg_schema
        return app_config

    return _pg_schema, _app_config
