"""Schema versions of the two stores: Alembic migrations shipped inside the package.

Each store has its own migration environment (``detector/alerts/migrations`` for the vehicle's
alert store, ``detector/center/migrations`` for the command center's) and its own version table
(``alembic_version_vehicle``, ``alembic_version_center``), so the two never mistake each other's
revision. Alembic is run through its ``Config``/``command`` API with ``script_location`` inside
the package: no ``alembic.ini`` is needed anywhere.

What a store does when it opens (:func:`prepare_schema`, writers; :func:`check_readable`, readers):

==========================================  ==============================  ===================================
the database                                a writer (monitor, serve)       a reader (report, ``db current``)
==========================================  ==============================  ===================================
empty                                       creates the schema (upgrade     refused: "holds no alert store"
                                            to head)
at this release's revision (head)           opens                           opens
an older revision                           refused: run ``examwatch db     refused: the same
                                            upgrade --db URL``
a revision this release does not know       refused: made by a newer        refused: the same
(a newer release)                           examwatch
the tables of revision 1 without a version  adopted: any table missing is   read as revision 1 (nothing
table (made by ``create_all`` before        created, then stamped revision  written)
migrations)                                 1
the other store's schema only               refused: names what it is       refused: names what it is
==========================================  ==============================  ===================================

Every refusal is a :class:`SchemaError` (an :class:`~detector.core.errors.InputError`: exit code 2
on the command line) whose ``state`` says which case it is. A writer never upgrades an older
schema by itself: an upgrade is a step the operator takes (``examwatch db upgrade``) after a
backup. Readers never write: no DDL, no stamp.

Creating and adopting run in one write transaction (SQLite ``BEGIN IMMEDIATE``; PostgreSQL with a
transaction-level advisory lock), and the state is checked again inside it, so two processes
opening the same empty database at once create it once.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Callable, Literal

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine

from detector.core.errors import InputError

__all__ = ["SchemaSpec", "SchemaState", "SchemaError", "VEHICLE_SCHEMA", "SIGNATURES", "inspect_schema", "prepare_schema",
           "check_readable", "upgrade_schema", "revisions", "head_revision", "run_env"]

StateKind = Literal["empty", "current", "older", "newer", "unversioned", "foreign"]


@dataclass
class SchemaSpec:
    """One store's schema: its migration scripts, version table and tables.

    ``script_location`` overrides the scripts' folder (tests point it at a copy with a further
    revision); by default it is the ``migrations`` folder of ``package``.
    """

    #: ``"vehicle"`` or ``"center"``
    name: str
    #: how errors call the store ("alert database", "center database")
    what: str
    #: the package holding ``migrations/`` (``env.py``, ``versions/``)
    package: str
    version_table: str
    #: the tables of revision 1 (a database with some of them and no version table predates migrations)
    tables: tuple[str, ...]
    #: the store's SQLAlchemy ``MetaData`` (for autogenerate and schema comparisons), imported when asked
    metadata: Callable[[], Any] = field(repr=False)
    script_location: str | None = None

    def location(self) -> str:
        """The folder of the migration scripts."""
        if self.script_location is not None:
            return str(self.script_location)
        return str(resources.files(self.package).joinpath("migrations"))


def _vehicle_metadata():
    from detector.alerts._models import Base

    return Base.metadata


VEHICLE_SCHEMA = SchemaSpec(
    name="vehicle", what="alert database", package="detector.alerts", version_table="alembic_version_vehicle",
    tables=("alerts", "alert_history", "alert_evidence", "push_outbox"), metadata=_vehicle_metadata)

#: how each store's schema is recognised in a database: (version table, a table of its own, what it is)
SIGNATURES: tuple[tuple[str, str, str, str], ...] = (
    ("vehicle", "alembic_version_vehicle", "alerts", "a vehicle's alert store (examwatch monitor)"),
    ("center", "alembic_version_center", "center_alerts", "a command center's store (examwatch serve)"),
)


class SchemaError(InputError):
    """A database whose schema this store cannot use as it is (see the module docstring).

    ``state`` is the :class:`SchemaState` found; ``state.kind`` one of ``empty``, ``older``,
    ``newer``, ``unversioned``, ``foreign``.
    """

    def __init__(self, message: str, state: SchemaState) -> None:
        super().__init__(message)
        self.state = state


@dataclass(frozen=True)
class SchemaState:
    """What :func:`inspect_schema` found.

    ``kind``: ``empty`` (none of the store's tables), ``current`` (at ``head``), ``older`` (a revision
    before ``head``), ``newer`` (a revision the scripts do not know: a newer release made it),
    ``unversioned`` (some of revision 1's tables, no version table: made before migrations),
    ``foreign`` (none of the store's tables, but another store's: ``others``).
    """

    kind: StateKind
    revision: str | None
    head: str
    #: revision 1's tables that are missing (``unversioned``)
    missing: tuple[str, ...] = ()
    #: the other stores found in the database (names from :data:`SIGNATURES`)
    others: tuple[str, ...] = ()

    def to_json(self) -> dict:
        return {"state": self.kind, "revision": self.revision, "head": self.head, "missing_tables": list(self.missing),
                "other_stores": list(self.others)}


# --- the scripts -----------------------------------------------------------------------------------
def _config(spec: SchemaSpec, connection: Connection | None = None):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", spec.location().replace("%", "%%"))
    cfg.attributes["spec"] = spec
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


@functools.lru_cache(maxsize=16)
def _script_info(location: str) -> tuple[str, tuple[tuple[str, str | None, str], ...]]:
    from alembic.script import ScriptDirectory

    from detector.alerts.db import log

    # the location alone (no Config): one ScriptDirectory per folder, cached
    sd = ScriptDirectory(location)
    heads = sd.get_heads()
    if len(heads) != 1:
        log.warning("migration scripts in %s have %d heads: %s", location, len(heads), heads)
    revs = tuple((s.revision, s.down_revision if isinstance(s.down_revision, (str, type(None))) else ",".join(s.down_revision),
                  (s.doc or "").strip()) for s in sd.walk_revisions())
    return heads[0], revs


def head_revision(spec: SchemaSpec) -> str:
    """The newest revision of the store's scripts (what this release writes)."""
    return _script_info(spec.location())[0]


def revisions(spec: SchemaSpec) -> list[dict]:
    """The store's revisions, newest first: ``{"revision", "down_revision", "message"}``."""
    return [{"revision": r, "down_revision": d, "message": m} for r, d, m in _script_info(spec.location())[1]]


# --- what a database holds ---------------------------------------------------------------------------
def _version(conn: Connection, table: str) -> str | None:
    rows = conn.execute(text(f'SELECT version_num FROM "{table}"')).scalars().all()
    return rows[0] if len(rows) == 1 else (",".join(sorted(rows)) if rows else None)


def inspect_schema(conn: Connection, spec: SchemaSpec) -> SchemaState:
    """What ``conn``'s database (its default schema) holds for ``spec``; reads only."""
    head = head_revision(spec)
    names = set(inspect(conn).get_table_names())
    others = tuple(name for name, vt, own, _ in SIGNATURES if name != spec.name and (vt in names or own in names))
    if spec.version_table in names:
        rev = _version(conn, spec.version_table)
        if rev is not None:
            if rev == head:
                return SchemaState("current", rev, head, others=others)
            known = {r for r, _, _ in _script_info(spec.location())[1]}
            return SchemaState("older" if rev in known else "newer", rev, head, others=others)
    present = [t for t in spec.tables if t in names]
    if present:
        return SchemaState("unversioned", None, head, missing=tuple(t for t in spec.tables if t not in names), others=others)
    return SchemaState("foreign" if others else "empty", None, head, others=others)


def _describe(names: tuple[str, ...]) -> str:
    return " and ".join(d for name, _, _, d in SIGNATURES if name in names)


def _refusal(spec: SchemaSpec, state: SchemaState, url: str, *, reading: bool) -> SchemaError | None:
    flag = " --center" if spec.name == "center" else ""
    if state.kind == "older":
        return SchemaError(f"the {spec.what} {url} has schema revision {state.revision}, older than this examwatch's "
                           f"({state.head}): back it up, then run `examwatch db upgrade{flag} --db {url}`", state)
    if state.kind == "newer":
        return SchemaError(f"the {spec.what} {url} has schema revision {state.revision}, which this examwatch does not "
                           f"know (its newest is {state.head}): a newer examwatch made it; install that release "
                           f"(examwatch does not downgrade a database)", state)
    if state.kind == "foreign":
        return SchemaError(f"{url} holds {_describe(state.others)}, not {_article(spec)}; "
                           + ("give this command the database it was made for" if not reading else
                              "read it with the command that owns it"), state)
    if reading and state.kind == "empty":
        return SchemaError(f"{url} holds no {spec.what} (no examwatch tables): check the URL", state)
    if reading and state.kind == "unversioned" and state.missing:
        return SchemaError(f"the {spec.what} {url} lacks the tables {', '.join(state.missing)} (made before migrations): "
                           f"run `examwatch db upgrade{flag} --db {url}` to complete it", state)
    return None


def _article(spec: SchemaSpec) -> str:
    return "a vehicle's alert store" if spec.name == "vehicle" else "a command center's store"


def check_readable(engine: Engine, spec: SchemaSpec, *, url: str) -> SchemaState:
    """Check, without writing anything, that a reader can use the database; raise :class:`SchemaError`
    otherwise. A database made before migrations with all of revision 1's tables is readable as
    revision 1 when that is this release's head."""
    with engine.connect() as conn:
        state = inspect_schema(conn, spec)
    err = _refusal(spec, state, url, reading=True)
    if err is None and state.kind == "unversioned" and state.head != _first_revision(spec):
        err = SchemaError(f"the {spec.what} {url} predates migrations and is older than this examwatch's schema "
                          f"({state.head}): run `examwatch db upgrade{' --center' if spec.name == 'center' else ''} "
                          f"--db {url}`", state)
    if err is not None:
        raise err
    return state


def _first_revision(spec: SchemaSpec) -> str:
    return next(r for r, d, _ in _script_info(spec.location())[1] if d is None)


@functools.lru_cache(maxsize=4)
def _lock_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(f"examwatch-schema-{name}".encode()).digest()[:8], "big", signed=True)


def _in_write_transaction(engine: Engine, spec: SchemaSpec, fn: Callable[[Connection, SchemaState], Any]) -> Any:
    from detector.alerts.db import WRITE_OPTION

    bind = engine.execution_options(**{WRITE_OPTION: True}) if engine.dialect.name == "sqlite" else engine
    with bind.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _lock_key(spec.name)})
        return fn(conn, inspect_schema(conn, spec))


def _run_upgrade(conn: Connection, spec: SchemaSpec, state: SchemaState, target: str) -> None:
    from alembic import command

    # on a database made before migrations (``unversioned``), revision 1 creates only the tables and
    # indexes that are missing and checks the columns of those that exist (see its script)
    command.upgrade(_config(spec, conn), target)


def prepare_schema(engine: Engine, spec: SchemaSpec, *, url: str) -> SchemaState:
    """Make the database usable by a writer of ``spec`` (see the module docstring): an empty one is
    created, one made before migrations adopted and stamped, one at head opened; an older, newer or
    foreign one refused with :class:`SchemaError`. Returns the state found first."""
    with engine.connect() as conn:
        state = inspect_schema(conn, spec)
    if state.kind == "current":
        return state
    err = _refusal(spec, state, url, reading=False)
    if err is not None:
        raise err
    if state.kind == "unversioned" and state.head != _first_revision(spec):
        raise SchemaError(f"the {spec.what} {url} predates migrations and is older than this examwatch's schema "
                          f"({state.head}): back it up, then run `examwatch db upgrade"
                          f"{' --center' if spec.name == 'center' else ''} --db {url}`", state)

    def create(conn: Connection, now: SchemaState) -> None:
        if now.kind == "current":
            return  # another process made it meanwhile
        err = _refusal(spec, now, url, reading=False)
        if err is not None:
            raise err
        _run_upgrade(conn, spec, now, "head")

    _in_write_transaction(engine, spec, create)
    return state


def upgrade_schema(engine: Engine, spec: SchemaSpec, *, url: str, target: str = "head") -> tuple[SchemaState, str]:
    """Upgrade the database to ``target`` (``head``: this release's schema), in one transaction:
    an empty one is created, one made before migrations adopted as revision 1 first, then every
    later revision applied. Returns the state before and the revision after. A newer or foreign
    database raises :class:`SchemaError`, an unknown or lower ``target`` :class:`InputError`; a
    failing revision rolls everything back."""
    from alembic.util import CommandError

    def run(conn: Connection, now: SchemaState) -> tuple[SchemaState, str]:
        if now.kind in ("newer", "foreign"):
            raise _refusal(spec, now, url, reading=False)  # type: ignore[misc]
        if not (now.kind == "current" and target == "head"):
            try:
                _run_upgrade(conn, spec, now, target)
            except CommandError as exc:  # an unknown target, or one below the current revision
                raise InputError(f"cannot upgrade the {spec.what} {url} to {target!r}: {exc} "
                                 f"(examwatch db history{' --center' if spec.name == 'center' else ''} lists the revisions; "
                                 f"examwatch does not downgrade)") from None
        return now, _version(conn, spec.version_table) or ""

    return _in_write_transaction(engine, spec, run)


# --- env.py ----------------------------------------------------------------------------------------
def run_env() -> None:
    """The body of both ``migrations/env.py``: migrate on the connection given in the Config's
    ``attributes`` (this module always gives one), with the spec's version table."""
    from alembic import context

    cfg = context.config
    spec: SchemaSpec = cfg.attributes["spec"]
    conn = cfg.attributes.get("connection")
    if conn is None:
        raise InputError("examwatch migrations run through `examwatch db upgrade`, not the alembic command")
    context.configure(connection=conn, target_metadata=spec.metadata(), version_table=spec.version_table,
                      render_as_batch=conn.dialect.name == "sqlite", compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


# --- helpers of revision 1 (adopting a database made by create_all) -------------------------------
def create_table_once(name: str, *elements: Any) -> bool:
    """``op.create_table(name, *elements)`` unless the table exists (a database made before
    migrations); an existing table must have every column of ``elements``, else :class:`InputError`
    names the missing ones. Returns True when the table was created."""
    from alembic import op
    from sqlalchemy import Column

    insp = inspect(op.get_bind())
    if not insp.has_table(name):
        op.create_table(name, *elements)
        return True
    have = {c["name"] for c in insp.get_columns(name)}
    missing = [e.name for e in elements if isinstance(e, Column) and e.name not in have]
    if missing:
        raise InputError(f"the table {name} made before migrations lacks the columns {', '.join(missing)}: it is older "
                         f"than any release this examwatch can upgrade; export its data and start a new database")
    return False


def create_index_once(name: str, table: str, columns: list[str], *, unique: bool = False) -> None:
    """``op.create_index`` unless an index of that name exists on ``table``."""
    from alembic import op

    if name not in {ix["name"] for ix in inspect(op.get_bind()).get_indexes(table)}:
        op.create_index(name, table, columns, unique=unique)
