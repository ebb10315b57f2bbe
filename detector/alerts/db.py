"""Database plumbing shared by the vehicle's alert store and the command center's store.

:func:`open_database` turns a URL (or none: a SQLite file in the data folder) into an engine whose
schema has been checked (and, for a writer, created) by its migrations (:mod:`detector.alerts.schema`);
:class:`Database` holds the engine and its two session factories and runs a function in one write
transaction. SQLite writes start with ``BEGIN IMMEDIATE`` (pysqlite's
implicit BEGIN is off), so writers queue on the database lock for ``SQLITE_BUSY_TIMEOUT_S``
instead of failing when a read snapshot cannot be upgraded; reads use a deferred ``BEGIN``. WAL
with ``synchronous=NORMAL``: a committed transaction survives the process being killed.
:func:`list_conditions` validates the paging and filters of an alert list for both stores.
"""

from __future__ import annotations

import errno
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    IntegrityError,
    InterfaceError,
    NoSuchModuleError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from detector.alerts._schemas import ALERT_STATUSES
from detector.core.errors import InputError, StoreUnavailable
from detector.core.timefmt import to_utc

__all__ = ["Database", "DatabaseStore", "open_database", "connect_database", "on_database", "list_conditions",
           "SQLITE_BUSY_TIMEOUT_S", "WRITE_OPTION", "LOCKED_RETRY_S", "unavailable_reason"]

log = logging.getLogger("examwatch.store")

#: seconds a SQLite writer waits for the database lock
SQLITE_BUSY_TIMEOUT_S = 5.0
#: after the busy timeout, a write that found the database locked is retried for this long more
#: (short sleeps) before :class:`~detector.core.errors.StoreUnavailable` is raised
LOCKED_RETRY_S = 1.0


def unavailable_reason(exc: BaseException) -> str | None:
    """One line saying why the store cannot be used when ``exc`` means it is unavailable (locked,
    busy, read-only, full, I/O error, a lost or refused connection, an exhausted pool); None for
    other errors (a bug, a constraint: those propagate as they are).

    A full disk (SQLite's ``SQLITE_FULL`` "database or disk is full", PostgreSQL's ``53100
    disk_full`` / "No space left on device") and a read-only SQLite database (``SQLITE_READONLY``)
    are said in the operator's words, with the database's own message in parentheses, e.g.
    ``the data folder is full: free space on its disk (database or disk is full)``.
    """
    if isinstance(exc, IntegrityError):
        return None
    if isinstance(exc, (OperationalError, InterfaceError, PoolTimeout, OSError)) or (
            isinstance(exc, DBAPIError) and exc.connection_invalidated):
        orig = getattr(exc, "orig", None) or exc
        msg = " ".join(str(orig).split())[:300] or type(orig).__name__
        return _in_operator_words(orig, msg)
    return None


def _in_operator_words(orig: BaseException, msg: str) -> str:
    low = msg.lower()
    sqlite = type(orig).__module__.startswith("sqlite3")
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if "disk is full" in low or "no space left" in low or code == "53100" or \
            (isinstance(orig, OSError) and orig.errno == errno.ENOSPC):
        where = "the PostgreSQL server's disk is full: free space on it" if code or "could not extend" in low \
            else "the data folder is full: free space on its disk"
        return f"{where} ({msg})"
    if sqlite and "readonly database" in low:
        return f"the data folder or the database file is read-only: make it writable ({msg})"
    return msg


def _locked(why: str) -> bool:
    w = why.lower()
    return "database is locked" in w or "database is busy" in w or "database table is locked" in w
#: execution option that makes a SQLite transaction begin IMMEDIATE (a writer)
WRITE_OPTION = "examwatch_write"
#: execution option: the busy timeout (ms) of that SQLite writer (default SQLITE_BUSY_TIMEOUT_S)
BUSY_OPTION = "examwatch_busy_ms"
_local = threading.local()


class Database:
    """An engine with a reader and a writer session factory (thread-safe; see the module docstring).

    Parameters
    ----------
    engine : sqlalchemy.engine.Engine
    url : str
        The URL with any password hidden (for messages).
    what : str
        What the store is called in errors ("alert store", "center store").
    serialize_writes : bool
        Run write transactions one at a time in this process (the center, whose ingest batches
        touch many rows), besides the database's own locking.
    """

    def __init__(self, engine: Engine, *, url: str, what: str, serialize_writes: bool = False) -> None:
        self.engine = engine
        self.url = url
        self.what = what
        #: ``"sqlite"`` or ``"postgresql"``
        self.backend = engine.dialect.name
        self.closed = False
        self._read = sessionmaker(engine, expire_on_commit=False)
        bind = engine.execution_options(**{WRITE_OPTION: True}) if self.backend == "sqlite" else engine
        self._write_sm = sessionmaker(bind, expire_on_commit=False)
        self._lock = threading.Lock() if serialize_writes else None
        self._impatient: dict[int, sessionmaker] = {}

    @contextmanager
    def patience(self, seconds: float) -> Iterator[None]:
        """Writes of this thread inside the block wait at most ``seconds`` for a locked SQLite
        database (no retry after), then raise :class:`StoreUnavailable`: for a caller that has
        somewhere to queue the change (the monitor's processing) rather than wait."""
        prev = getattr(_local, "busy_s", None)
        _local.busy_s = seconds
        try:
            yield
        finally:
            _local.busy_s = prev

    def _writer(self) -> tuple[sessionmaker, float]:
        busy_s = getattr(_local, "busy_s", None)
        if busy_s is None or self.backend != "sqlite":
            return self._write_sm, LOCKED_RETRY_S
        ms = max(0, int(busy_s * 1000))
        sm = self._impatient.get(ms)
        if sm is None:
            sm = self._impatient[ms] = sessionmaker(self.engine.execution_options(**{WRITE_OPTION: True, BUSY_OPTION: ms}),
                                                    expire_on_commit=False)
        return sm, 0.0

    def check_open(self) -> None:
        if self.closed:
            raise RuntimeError(f"the {self.what} is closed")

    def reader(self) -> Session:
        """A session for reads (one consistent snapshot per transaction)."""
        self.check_open()
        return self._read()

    def write(self, fn: Callable[[Session], Any]) -> Any:
        """Run ``fn(session)`` in one write transaction and return its result; a lost creation
        race (unique key) is retried twice."""
        self.check_open()
        if self._lock is None:
            return self._write_retrying(fn)
        with self._lock:
            return self._write_retrying(fn)

    def _write_retrying(self, fn):
        """Run ``fn`` in a write transaction. A lost creation race (unique key) is retried twice; a
        locked SQLite database for :data:`LOCKED_RETRY_S` more after its busy timeout; a connection
        lost on the way (a PostgreSQL server restart, ``pg_terminate_backend``) once, on a fresh
        connection. A store still unavailable raises :class:`StoreUnavailable` with the reason.
        Retrying is safe: the stores' writes change nothing when applied a second time."""
        races = 0
        lost = 0
        locked_since: float | None = None
        pause = 0.02
        write_sm, retry_s = self._writer()
        while True:
            try:
                with write_sm() as s, s.begin():
                    return fn(s)
            except IntegrityError:
                races += 1
                if races > 2:
                    raise
                continue
            except (DBAPIError, PoolTimeout, OSError) as exc:
                why = unavailable_reason(exc)
                if why is None:
                    raise
                invalidated = isinstance(exc, DBAPIError) and exc.connection_invalidated
                if _locked(why):
                    now = time.monotonic()
                    locked_since = now if locked_since is None else locked_since
                    if now - locked_since < retry_s:
                        time.sleep(pause)
                        pause = min(pause * 2, 0.2)
                        continue
                elif (invalidated or isinstance(exc, InterfaceError)) and lost == 0:
                    lost += 1
                    continue
                raise StoreUnavailable(f"the {self.what} cannot be written: {why}") from exc

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.engine.dispose()


class DatabaseStore:
    """What both stores share on top of their :class:`Database` (``self.db``): the engine, the
    URL with its password hidden, the backend name, ``close()`` and use as a context manager."""

    db: Database

    @property
    def engine(self) -> Engine:
        return self.db.engine

    @property
    def url(self) -> str:
        """The database URL with any password hidden."""
        return self.db.url

    @property
    def backend(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self.db.backend

    def close(self) -> None:
        """Release the connections (SQLite checkpoints its WAL when the last one closes)."""
        self.db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _sqlite_engine(url: URL, *, readonly: bool = False) -> Engine:
    db = url.database or ""
    memory = db in ("", ":memory:") or db.startswith("file::memory:")
    kw: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S}}
    if memory:
        kw["poolclass"] = StaticPool
    elif readonly:
        if not Path(db).expanduser().is_file():
            raise FileNotFoundError(errno.ENOENT, f"no such file: {db}")
    else:
        Path(db).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, **kw)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (see "begin" below)
        cur = dbapi_conn.cursor()
        try:
            if readonly:
                cur.execute("PRAGMA query_only=ON")  # a reader: no statement may write
            else:
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        finally:
            cur.close()

    default_ms = int(SQLITE_BUSY_TIMEOUT_S * 1000)

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:
        opts = conn.get_execution_options()
        if opts.get(WRITE_OPTION):
            conn.exec_driver_sql(f"PRAGMA busy_timeout={int(opts.get(BUSY_OPTION, default_ms))}")
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")

    return engine


def _postgres_engine(url: URL, *, readonly: bool = False) -> Engine:
    url = url.set(drivername="postgresql+psycopg")
    connect_args = {} if "connect_timeout" in url.query else {"connect_timeout": 5}
    engine = create_engine(url, pool_pre_ping=True, connect_args=connect_args)
    if readonly:
        @event.listens_for(engine, "connect")
        def _read_only(dbapi_conn, _record) -> None:
            with dbapi_conn.cursor() as cur:  # a reader: the server refuses any write of this session
                cur.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
            dbapi_conn.commit()

    return engine


def open_database(url: str | None, *, data_dir: Path, default_file: str, schema, what: str,
                  readonly: bool = False) -> tuple[Engine, str]:
    """An engine on a database with the store's schema, and the URL with its password hidden.

    ``url`` ``None`` → the SQLite file ``data_dir/default_file`` (directories created);
    ``sqlite:///PATH``; ``postgresql://USER@HOST:PORT/DB`` (psycopg 3). ``schema`` is the store's
    :class:`~detector.alerts.schema.SchemaSpec`: a writer's database is made or checked by
    :func:`~detector.alerts.schema.prepare_schema` (an empty one created by the migrations).
    ``readonly``: nothing is created or written (no directory, no file, no table, no stamp; the
    connections refuse writes: SQLite ``query_only``, PostgreSQL read-only sessions), and
    :func:`~detector.alerts.schema.check_readable` refuses a missing or foreign schema.

    A bad URL, an unreachable database or a missing SQLite file (``readonly``) raises
    :class:`~detector.core.errors.InputError` naming ``what``; a schema the store cannot use raises
    :class:`~detector.alerts.schema.SchemaError` (an ``InputError``) saying what to do.
    """
    from detector.alerts.schema import check_readable, prepare_schema

    engine, safe = connect_database(url, data_dir=data_dir, default_file=default_file, what=what, readonly=readonly)
    step = check_readable if readonly else prepare_schema
    on_database(engine, safe, what, lambda: step(engine, schema, url=safe), dispose=True)
    return engine, safe


def connect_database(url: str | None, *, data_dir: Path, default_file: str, what: str,
                     readonly: bool = False) -> tuple[Engine, str]:
    """The engine of :func:`open_database` without its schema step (``examwatch db`` runs its own),
    and the URL with its password hidden; errors as there."""
    data_dir = Path(data_dir)
    if url is None and readonly:
        u = URL.create("sqlite", database=str(data_dir / default_file))
    elif url is None:
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot create the data directory {data_dir}: {exc.strerror or exc}.") from None
        u = URL.create("sqlite", database=str(data_dir / default_file))
    else:
        try:
            u = make_url(str(url))
        except (ArgumentError, ValueError):
            raise InputError(f"{url!r} is not a database URL; use sqlite:///PATH or postgresql://USER@HOST:PORT/DB.") from None
    safe = u.render_as_string(hide_password=True)
    backend, _, driver = u.drivername.partition("+")
    try:
        if backend == "sqlite" and driver in ("pysqlite", ""):
            engine = _sqlite_engine(u, readonly=readonly)
        elif backend in ("postgresql", "postgres") and driver in ("psycopg", ""):
            engine = _postgres_engine(u, readonly=readonly)
        else:
            raise InputError(f"unsupported database URL {safe}; use sqlite:///PATH or postgresql://USER@HOST:PORT/DB.")
    except (ArgumentError, NoSuchModuleError) as exc:
        raise InputError(f"cannot use the database URL {safe}: {exc}.") from None
    except FileNotFoundError:
        raise InputError(f"no {what} at {u.database} (no such file)") from None
    except OSError as exc:
        raise InputError(f"cannot open the {what} {safe}: {exc.strerror or exc}.") from None
    return engine, safe


def on_database(engine: Engine, safe: str, what: str, fn: Callable[[], Any], *, dispose: bool = False) -> Any:
    """``fn()``, with a database error (unreachable, refused, a failing statement) raised as
    :class:`InputError` "cannot open the {what} {url}: …"; with ``dispose`` the engine is disposed
    when ``fn`` raises."""
    try:
        return fn()
    except InputError:
        if dispose:
            engine.dispose()
        raise
    except (DBAPIError, SQLAlchemyError, OSError) as exc:
        if dispose:
            engine.dispose()
        orig = getattr(exc, "orig", None) or exc
        msg = " ".join(str(orig).split()) or type(orig).__name__
        raise InputError(f"cannot open the {what} {safe}: {msg.rstrip('.')}.") from None


def list_conditions(row, *, site, status, since, f_min_hz, f_max_hz, limit, offset) -> list:
    """Validate the paging and filter arguments of an alert list and build its WHERE conditions on
    the table ``row`` (which has ``site``, ``status``, ``last_seen``, ``center_hz``). Shared by the
    vehicle's store and the command center's. Raises :class:`InputError`."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
        raise InputError(f"limit must be an integer from 1 to 1000, not {limit!r}.")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InputError(f"offset must be a non-negative integer, not {offset!r}.")
    conds = []
    if site is not None:
        conds.append(row.site == site)
    if status is not None:
        statuses = [status] if isinstance(status, str) else list(status)
        bad = [st for st in statuses if st not in ALERT_STATUSES]
        if bad:
            raise InputError(f"unknown alert status {bad[0]!r}; use one of {', '.join(ALERT_STATUSES)}.")
        conds.append(row.status.in_(statuses))
    if since is not None:
        conds.append(row.last_seen >= to_utc(since))
    for name, v in (("f_min_hz", f_min_hz), ("f_max_hz", f_max_hz)):
        if v is not None and not (isinstance(v, (int, float)) and math.isfinite(v)):
            raise InputError(f"{name} must be a finite number, not {v!r}.")
    if f_min_hz is not None and f_max_hz is not None and f_min_hz > f_max_hz:
        raise InputError(f"f_min_hz ({f_min_hz}) is above f_max_hz ({f_max_hz}).")
    if f_min_hz is not None:
        conds.append(row.center_hz >= float(f_min_hz))
    if f_max_hz is not None:
        conds.append(row.center_hz <= float(f_max_hz))
    return conds
