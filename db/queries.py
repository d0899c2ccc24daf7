"""Named SQL queries, loaded once from the .sql files beside this module.

Each block starts with `-- name: <name><suffix>` and a comment line saying what it does.
The suffix says what a call returns: `^` one row (dict) or None, `$` the first column of
one row, `!` the number of rows affected, none: a list of rows. Parameters are
`%(name)s`; a literal percent sign is written `%%`. The connection comes first, so the
handler owns the transaction:

    from db import queries as q
    row = q.user_by_id(conn, user_id=7)
"""

import re
from pathlib import Path

_BLOCK = re.compile(r"^--\s*name:\s*(\w+)([$^!]?)\s*$", re.MULTILINE)


class Query:
    """One named statement, callable as `query(conn, **params)`."""

    def __init__(self, name, suffix, text, source):
        lines = text.strip().splitlines()
        doc = [line for line in lines if line.startswith("--")]
        self.name, self.suffix, self.source = name, suffix, source
        self.__doc__ = " ".join(line.lstrip("- ") for line in doc)
        self.sql = "\n".join(line for line in lines if not line.startswith("--")).strip()
        self.columns = None  # the names of the result's columns, read once from the first result

    def __call__(self, conn, **params):
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

    def __repr__(self):
        return f"<Query {self.name} from {self.source}>"


def load(folder):
    """Read every .sql file of `folder` into a dict of name -> Query; names must be unique."""
    found = {}
    for path in sorted(Path(folder).glob("*.sql")):
        text = path.read_text(encoding="utf-8")
        heads = list(_BLOCK.finditer(text))
        for head, following in zip(heads, [*heads[1:], None], strict=True):
            name, suffix = head.group(1), head.group(2)
            if name in found:
                raise ValueError(f"query {name} defined twice ({found[name].source}, {path.name})")
            end = following.start() if following else len(text)
            found[name] = Query(name, suffix, text[head.end() : end], path.name)
    return found


_QUERIES = load(Path(__file__).parent)


def __getattr__(name):
    try:
        return _QUERIES[name]
    except KeyError:
        raise AttributeError(f"no query named {name}") from None
