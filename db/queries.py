"""Named SQL queries, loaded once from the .sql files beside this module.

Each block starts with `-- name: <name><suffix>` and a comment line saying what it does.
The suffix says what a call returns: `^` one row (dict) or None, `$` the first column of
one row, `!` the number of rows affected, none: a list of rows. Parameters are
`%(name)s`; a literal percent sign is written `%%`. The connection comes first, so the
handler owns the transaction:

    from db import queries as q
    row = q.user_by_id(conn, user_id=7)

A name followed by `prepared` (`-- name: check_token^ prepared`) marks a statement run on every
request of the fleet: outside a transaction it is prepared once per connection and executed
through psycopg's libpq layer, without a cursor (see `Query._execute_prepared`).
"""

import re
import weakref
from pathlib import Path

import psycopg
from psycopg import errors, pq
from psycopg.adapt import PyFormat, Transformer

_BLOCK = re.compile(r"^--\s*name:\s*(\w+)([$^!]?)(\s+prepared)?\s*$", re.MULTILINE)
_PARAM = re.compile(r"%\((\w+)\)s")
# What each connection has prepared, and the Transformer that converts its values; forgotten
# with the connection.
_PREPARED = weakref.WeakKeyDictionary()


class Query:
    """One named statement, callable as `query(conn, **params)`."""

    def __init__(self, name, suffix, text, source, prepared=False):
        lines = text.strip().splitlines()
        doc = [line for line in lines if line.startswith("--")]
        self.name, self.suffix, self.source = name, suffix, source
        self.__doc__ = " ".join(line.lstrip("- ") for line in doc)
        self.sql = "\n".join(line for line in lines if not line.startswith("--")).strip()
        self.columns = None  # the names of the result's columns, read once from the first result
        self.prepared = prepared
        if prepared:
            if suffix != "^":
                raise ValueError(f"query {name}: only a one-row query (^) can be marked prepared")
            # libpq's form: $1, $2, ... in the order the names first appear.
            self.params = list(dict.fromkeys(_PARAM.findall(self.sql)))
            numbered = _PARAM.sub(lambda m: f"${self.params.index(m.group(1)) + 1}", self.sql)
            self.statement = f"auth_{name}".encode(), numbered.replace("%%", "%").encode()

    def __call__(self, conn, **params):
        # Inside a transaction a cursor runs it: there a failed Execute (of a statement psycopg
        # dropped, see below) would abort the transaction before it could be prepared again.
        if self.prepared and conn.pgconn.transaction_status == pq.TransactionStatus.IDLE:
            return self._execute_prepared(conn, params)
        cur = conn.cursor(row_factory=self._rows)
        cur.execute(self.sql, params)
        if self.suffix == "!":
            return cur.rowcount
        if self.suffix == "^":
            return cur.fetchone()
        if self.suffix == "$":
            row = cur.fetchone()
            return None if row is None else next(iter(row.values()))
        return cur.fetchall()

    def _rows(self, cursor):
        """psycopg's row factory: rows as dicts, by the column names the statement's text fixes.
        psycopg's own dict_row reads and decodes every name again for every result, a tenth of
        the Python time of a check-token request."""
        columns = self.columns
        if columns is None or len(columns) != cursor.pgresult.nfields:
            columns = self.columns = tuple(column.name for column in cursor.description or ())

        def row(values):
            return dict(zip(columns, values, strict=True))

        return row

    def _execute_prepared(self, conn, params):
        """One row (dict) or None, in one round trip (Bind, Execute, Sync) on a statement this
        connection prepared once; the values go out and come back through psycopg's own
        adapters, the results in binary. A cursor costs the client more CPU than this: 43
        against 19 µs a check_token call, one process calling in a loop. Errors are psycopg's:
        OperationalError for a lost connection or a timeout, the SQLSTATE's class otherwise."""
        state = _PREPARED.get(conn)
        if state is None:
            state = _PREPARED[conn] = (set(), Transformer.from_context(conn))
        prepared, tx = state
        values = tx.dump_sequence([params[name] for name in self.params], [PyFormat.TEXT] * len(self.params))
        name, text = self.statement
        pgconn = conn.pgconn
        for attempt in (1, 2):
            if name not in prepared:
                _succeeded(conn, pgconn.prepare(name, text), pq.ExecStatus.COMMAND_OK)
                prepared.add(name)
            result = pgconn.exec_prepared(name, values, None, pq.Format.BINARY)
            # psycopg drops every prepared statement of a connection (DEALLOCATE ALL) when its own
            # cache of them overflows; then this one is prepared again.
            if attempt == 1 and result.error_field(pq.DiagnosticField.SQLSTATE) == b"26000":
                prepared.discard(name)
                continue
            break
        _succeeded(conn, result, pq.ExecStatus.TUPLES_OK)
        if result.ntuples == 0:
            return None
        if self.columns is None:
            self.columns = tuple(result.fname(i).decode() for i in range(result.nfields))
        tx.set_pgresult(result)
        return dict(zip(self.columns, tx.load_row(0, tuple), strict=True))

    def __repr__(self):
        return f"<Query {self.name} from {self.source}>"


def _succeeded(conn, result, expected):
    """Raise what psycopg would for a result that is not `expected`."""
    if result.status == expected:
        return
    if conn.pgconn.status != pq.ConnStatus.OK:
        raise psycopg.OperationalError(conn.pgconn.get_error_message().strip() or "the connection was lost")
    raise errors.error_from_result(result, encoding=conn.info.encoding)


def load(folder):
    """Read every .sql file of `folder` into a dict of name -> Query; names must be unique."""
    found = {}
    for path in sorted(Path(folder).glob("*.sql")):
        text = path.read_text(encoding="utf-8")
        heads = list(_BLOCK.finditer(text))
        for head, following in zip(heads, [*heads[1:], None], strict=True):
            name, suffix, prepared = head.group(1), head.group(2), bool(head.group(3))
            if name in found:
                raise ValueError(f"query {name} defined twice ({found[name].source}, {path.name})")
            end = following.start() if following else len(text)
            found[name] = Query(name, suffix, text[head.end() : end], path.name, prepared)
    return found


_QUERIES = load(Path(__file__).parent)


def __getattr__(name):
    try:
        return _QUERIES[name]
    except KeyError:
        raise AttributeError(f"no query named {name}") from None
