"""Matching inside JSON arrays (codings, identifiers) on PostgreSQL and SQLite alike."""

from django.db import NotSupportedError
from django.db.models import (
    BooleanField,
    Expression,
    F,
    Q,
)

from .values import Token

# --- JSON arrays, on PostgreSQL and SQLite -----------------------------------------------------------------


class JsonArrayHas(Expression):
    """True where a JSON column holds, at `path` (keys; "*" steps into every element of an array), an array
    with an object whose fields equal `match` (None: the field absent or empty). PostgreSQL
    jsonb_array_elements, SQLite json_each: the same meaning on both, in the database (no rows fetched)."""

    output_field = BooleanField()
    conditional = True

    def __init__(self, column: str, path: tuple[str, ...], match: dict[str, str | None]):
        super().__init__(output_field=BooleanField())
        self.column = F(column) if isinstance(column, str) else column
        self.path = path
        self.match = tuple(match.items())

    def get_source_expressions(self):
        return [self.column]

    def set_source_expressions(self, exprs):
        (self.column,) = exprs

    def as_sql(self, compiler, connection):
        """carerecord runs on PostgreSQL and SQLite (as_postgresql, as_sqlite); any other backend is refused."""
        raise NotSupportedError(f"JSON array search is written for PostgreSQL and SQLite, not {connection.vendor}")

    @staticmethod
    def _steps(path):
        steps, keys = [], []
        for key in path:
            if key == "*":
                steps.append(tuple(keys))
                keys = []
            else:
                keys.append(key)
        steps.append(tuple(keys))
        return steps

    def _conditions(self, element: str, extract) -> tuple[list[str], list]:
        where, values = [], []
        for name, value in self.match:
            sql, params = extract(element, name)
            if value is None:
                where.append(f"COALESCE({sql}, '') = ''")
                values += params
            else:
                where.append(f"{sql} = %s")
                values += [*params, value]
        return where, values

    def as_postgresql(self, compiler, connection):
        column, params = compiler.compile(self.column)
        params, sources, source = list(params), [], f"({column})"
        for index, keys in enumerate(self._steps(self.path)):
            target = f"({source} #> %s)" if keys else source
            sources.append(
                f"jsonb_array_elements(CASE WHEN jsonb_typeof({target}) = 'array' THEN {target} "
                f"ELSE '[]'::jsonb END) AS _e{index}"
            )
            params += [list(keys), list(keys)] if keys else []
            source = f"_e{index}"
        where, values = self._conditions(source, lambda element, name: (f"({element} ->> %s)", [name]))
        # Only fixed SQL and aliases are formatted in; every value (keys, codes) is a parameter.
        sql = f"EXISTS (SELECT 1 FROM {', '.join(sources)} WHERE {' AND '.join(where) or 'TRUE'})"  # noqa: S608
        return sql, (*params, *values)

    def as_sqlite(self, compiler, connection):
        column, params = compiler.compile(self.column)
        params, sources, source = list(params), [], column
        for index, keys in enumerate(self._steps(self.path)):
            if index:  # an element that is not an object has nothing to step into
                source = f"(CASE WHEN _e{index - 1}.type = 'object' THEN _e{index - 1}.value ELSE '{{}}' END)"
            path = "$" + "".join(f'."{key}"' for key in keys)
            sources.append(
                f"json_each(CASE WHEN json_type({source}, %s) = 'array' THEN {source} ELSE '[]' END, %s) AS _e{index}"
            )
            params += [path, path]
        last = f"_e{len(sources) - 1}"
        where, values = self._conditions(
            last, lambda element, name: (f"json_extract({element}.value, %s)", [f'$."{name}"'])
        )
        conditions = " AND ".join([f"{last}.type = 'object'", *where])
        sql = f"EXISTS (SELECT 1 FROM {', '.join(sources)} WHERE {conditions})"  # noqa: S608 (values are parameters)
        return sql, (*params, *values)


def token_in_array(column: str, path: tuple[str, ...], token: Token, *, code_field: str = "code") -> Q:
    match = {}
    if token.system is not None:
        match["system"] = token.system or None
    if token.code is not None:
        match[code_field] = token.code
    return Q(JsonArrayHas(column, path, match))
