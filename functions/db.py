"""Database engine and sessions for the incident store."""

import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker


def finite_json(value: Any) -> Any:
    """Return a copy of value with every NaN or infinite float replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_json(item) for item in value]
    return value


def dumps_json(value: Any) -> str:
    """Serialize for JSON and JSONB columns. NaN and Infinity are not JSON, so they are stored as null."""
    return json.dumps(finite_json(value), allow_nan=False, ensure_ascii=False)


def create_db_engine(database_url: str, **kwargs: Any) -> Engine:
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 10)
    kwargs.setdefault("connect_args", {"connect_timeout": 5})
    return create_engine(database_url, json_serializer=dumps_json, **kwargs)


class Database:
    """An engine and its session factory, created once per process."""

    def __init__(self, database_url: str, **engine_kwargs: Any) -> None:
        self.engine = create_db_engine(database_url, **engine_kwargs)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """Yield a session that commits on success and rolls back on any exception."""
        with self.sessionmaker() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def dispose(self) -> None:
        self.engine.dispose()
