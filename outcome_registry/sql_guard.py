"""Vetting of the SQL box (CLI ``sql`` and the dashboard's SQL page): one read over the published tables.

The guard decides on DuckDB's own parse of the statement (``json_serialize_sql``), never on the text:
comments between a name and its bracket, quoting, letter case or look-alike letters change nothing,
because what is checked is the parse tree the engine would run. A statement passes only if

- it is exactly one statement, and a SELECT (DESCRIBE, SHOW TABLES, SUMMARIZE, FROM-first, VALUES and
  TABLE parse as SELECT too; PRAGMA, SET, CALL, ATTACH, COPY, EXPORT, INSTALL, LOAD, … do not);
- every node of the tree is of a kind listed here (an unknown construct is refused, not ignored);
- every scalar, aggregate and window function it calls is on :data:`ALLOWED_FUNCTIONS`, and every table
  function on :data:`ALLOWED_TABLE_FUNCTIONS` (both allow-lists: a function DuckDB adds later is refused
  until someone adds it here); no function is called through a schema or catalog;
- every table it reads is a published table the caller may read (or a CTE of the statement itself):
  never a file path (DuckDB's replacement scans turn ``FROM 'x.csv'`` into a file read), never a system
  catalog.

The connection that runs the statement is a second wall on its own (readonly_sql: read-only attachments,
external access off, configuration locked, time and memory limits). Messages never quote a server path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Any

import duckdb

from outcome_registry.errors import RegistryError

MAX_QUERY_CHARS = 100_000
MAX_TREE_NODES = 200_000

# Scalar functions: arithmetic, text, dates, lists/structs/maps, regular expressions, JSON values, hashing.
_SCALAR = """
abs acos acosh add age asin asinh atan atan2 atanh bar base64 bin bit_count bit_length bit_position cbrt
ceil ceiling century char_length character_length chr coalesce concat concat_ws contains cos cosh cot
damerau_levenshtein date_add date_diff date_part date_sub date_trunc datediff datepart datesub datetrunc day
dayname dayofmonth dayofweek dayofyear days_in_month decade degrees divide editdist3 ends_with epoch
epoch_ms epoch_ns epoch_us equi_width_bins era even exp factorial fdiv flatten floor fmod format
format_bytes formatreadabledecimalsize formatreadablesize from_base64 from_binary from_hex gamma gcd
generate_series get_bit greatest greatest_common_divisor hamming hash hex hour if ifnull ilike_escape
instr isfinite isinf isnan isodow isoyear jaccard jaro_similarity jaro_winkler_similarity julian last_day
lcase lcm least least_common_multiple left len length levenshtein lgamma like_escape ln log log10 log2
lower lpad ltrim make_date make_time make_timestamp md5 microsecond millennium millisecond minute mismatches
mod month monthname multiply nanosecond nextafter nfc_normalize not_ilike_escape not_like_escape nullif
octet_length ord overlay pi position pow power prefix printf quarter radians range regexp_escape
regexp_extract regexp_extract_all regexp_full_match regexp_matches regexp_replace regexp_split_to_array
repeat replace reverse right round round_even roundbankers second sha1 sha256 sign signbit sin sinh split
split_part sqrt starts_with str_split str_split_regex strftime string_split string_split_regex
string_to_array strip_accents strlen strpos strptime substr substring subtract suffix tan tanh time_bucket
to_base to_base64 to_binary to_centuries to_days to_decades to_hex to_hours to_microseconds to_millennia
to_milliseconds to_minutes to_months to_quarters to_seconds to_timestamp to_weeks to_years translate trim
trunc try_strptime typeof ucase unbin unhex unicode upper url_decode url_encode week weekday weekofyear xor
year yearweek
current_date current_time current_timestamp get_current_time get_current_timestamp now today
transaction_timestamp current_localtime current_localtimestamp
array_aggr array_aggregate array_append array_apply array_cat array_concat array_contains
array_cosine_distance array_cosine_similarity array_cross_product array_distance array_distinct
array_dot_product array_extract array_filter array_grade_up array_has array_has_all array_has_any
array_indexof array_inner_product array_intersect array_length array_pop_back array_pop_front
array_position array_prepend array_push_back array_push_front array_reduce array_resize array_reverse
array_reverse_sort array_select array_slice array_sort array_to_string array_transform array_unique
array_value array_where array_zip cardinality element_at filter generate_subscripts grade_up list_aggr
list_aggregate list_any_value list_append list_apply list_approx_count_distinct list_avg list_bit_and
list_bit_or list_bit_xor list_bool_and list_bool_or list_cat list_concat list_contains list_cosine_distance
list_cosine_similarity list_count list_distance list_distinct list_dot_product list_element list_entropy
list_extract list_filter list_first list_grade_up list_has list_has_all list_has_any list_histogram
list_indexof list_inner_product list_intersect list_kurtosis list_kurtosis_pop list_last list_mad list_max
list_median list_min list_mode list_pack list_position list_prepend list_product list_reduce list_resize
list_reverse list_reverse_sort list_select list_sem list_skewness list_slice list_sort list_stddev_pop
list_stddev_samp list_string_agg list_sum list_transform list_unique list_value list_var_pop list_var_samp
list_where list_zip reduce apply
map map_concat map_contains map_contains_entry map_contains_value map_entries map_extract map_extract_value
map_from_entries map_keys map_values row struct_concat struct_contains struct_extract struct_extract_at
struct_has struct_indexof struct_insert struct_keys struct_pack struct_position struct_update struct_values
union_extract union_tag union_value
json_array json_array_length json_contains json_exists json_extract json_extract_path json_extract_path_text
json_extract_string json_keys json_merge_patch json_object json_pretty json_quote json_structure json_type
json_valid json_value to_json row_to_json array_to_json
gen_random_uuid uuid uuidv4 random
"""
# Aggregates and window functions.
_AGGREGATE = """
any_value approx_count_distinct approx_quantile approx_top_k arbitrary arg_max arg_max_null arg_min
arg_min_null argmax argmin array_agg avg bit_and bit_or bit_xor bool_and bool_or corr count count_if
count_star countif covar_pop covar_samp entropy favg first fsum geomean geometric_mean group_concat
histogram histogram_exact kahan_sum kurtosis kurtosis_pop last list listagg mad max max_by mean median min
min_by mode product quantile quantile_cont quantile_disc regr_avgx regr_avgy regr_count regr_intercept
regr_r2 regr_slope regr_sxx regr_sxy regr_syy reservoir_quantile sem skewness stddev stddev_pop
stddev_samp string_agg sum sumkahan var_pop var_samp variance wavg weighted_avg json_group_array
json_group_object
cume_dist dense_rank fill first_value lag last_value lead nth_value ntile percent_rank rank rank_dense
row_number
"""
# Functions the parser itself writes into the tree for operators and literals (x[1], x[1:2], ->>,
# LIKE, IS DISTINCT FROM, interval literals, list comprehensions, …).
_PARSER = """
array_extract array_slice list_value list_apply list_filter struct_pack to_days trunc ~~ !~~ ~~* !~~* ~~~
!~~~ ^@ -> ->> @> <@ && || ** // << >> % & | ^ ~ + - * / = != <> < > <= >= <=> @ !__postfix
"""

ALLOWED_FUNCTIONS = frozenset((_SCALAR + _AGGREGATE + _PARSER).split())
ALLOWED_TABLE_FUNCTIONS = frozenset({"range", "generate_series", "unnest", "json_each", "json_tree"})

# Expression classes and non-expression node types of DuckDB's serialized parse tree that a read may use.
ALLOWED_CLASSES = frozenset(
    {
        "BETWEEN", "CASE", "CAST", "COLLATE", "COLUMN_REF", "COMPARISON", "CONJUNCTION", "CONSTANT",
        "FUNCTION", "LAMBDA", "LAMBDA_REF", "OPERATOR", "POSITIONAL_REFERENCE", "STAR", "SUBQUERY", "TYPE",
        "WINDOW",
    }
)  # fmt: skip
TABLE_REFS = frozenset(
    {"BASE_TABLE", "JOIN", "SUBQUERY", "TABLE_FUNCTION", "EXPRESSION_LIST", "EMPTY", "SHOW_REF", "PIVOT"}
)
OTHER_NODE_TYPES = frozenset(
    {
        "SELECT_NODE", "SET_OPERATION_NODE", "RECURSIVE_CTE_NODE", "CTE_NODE",
        "ORDER_MODIFIER", "LIMIT_MODIFIER", "LIMIT_PERCENT_MODIFIER", "DISTINCT_MODIFIER",
        "ORDER_DEFAULT", "ASCENDING", "DESCENDING", "ORDER_ASCENDING", "ORDER_DESCENDING", "INVALID",
    }
)  # fmt: skip
# SHOW <special> that only list table names.
ALLOWED_SHOW_SPECIAL = frozenset({'"tables"', "__show_tables_expanded"})
# information_schema views that only describe tables and columns.
ALLOWED_INFORMATION_SCHEMA = frozenset({"tables", "columns"})
_PLAIN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


class QueryRefused(RegistryError):
    """The SQL box refused a statement (or stopped it); exit code 2."""

    exit_code = 2


@dataclass(frozen=True)
class Vetted:
    """A statement that passed the guard, with what it reads and calls."""

    sql: str
    tables: frozenset[str]
    functions: frozenset[str]


_PATH_RE = re.compile(r"(?<![\w)\]])(?:[A-Za-z]:)?[/\\][^\s'\"`,;)]*")


def scrub_paths(text: str) -> str:
    """Text with anything that looks like a file path replaced by <path> (messages never show paths)."""
    return _PATH_RE.sub("<path>", text)


def _shown(name: str, limit: int = 40) -> str:
    """User-typed text, safe and short enough to quote back in a message (ASCII, printable, no paths)."""
    text = scrub_paths("".join(ch if ch.isprintable() and ch.isascii() else "?" for ch in name))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _parse(text: str) -> dict[str, Any]:
    con = duckdb.connect()
    try:
        raw = con.execute("SELECT json_serialize_sql(?::VARCHAR)", [text]).fetchall()[0][0]
    except duckdb.Error:
        raise QueryRefused("The statement could not be parsed as SQL.") from None
    finally:
        con.close()
    tree = json.loads(raw)
    if tree.get("error"):
        if tree.get("error_type") == "parser":
            message = str(tree.get("error_message") or "syntax error")
            raise QueryRefused(f"The statement could not be parsed: {_shown(message, 200)}.")
        raise QueryRefused(
            "Only reads are allowed here (SELECT, WITH, DESCRIBE, SHOW TABLES, SUMMARIZE); this statement was "
            "refused. The published warehouse is read-only: writes, ATTACH, COPY, EXPORT, PRAGMA, SET, CALL and "
            "INSTALL/LOAD are refused."
        )
    return tree


def _nodes(tree: Any) -> Iterator[dict[str, Any]]:
    stack = [tree]
    seen = 0
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            seen += 1
            if seen > MAX_TREE_NODES:
                raise QueryRefused("The statement is too large to check; split it into smaller queries.")
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _cte_names(nodes: list[dict[str, Any]]) -> set[str]:
    names: set[str] = set()
    for node in nodes:
        cte_map = node.get("cte_map")
        if isinstance(cte_map, dict):
            names.update(str(e.get("key", "")).lower() for e in cte_map.get("map", []) if isinstance(e, dict))
    return names


class _Checker:
    def __init__(self, tables: Collection[str] | None, catalogs: Collection[str]) -> None:
        self.tables = None if tables is None else {t.lower() for t in tables}
        self.catalogs = {c.lower() for c in catalogs}
        self.read: set[str] = set()
        self.called: set[str] = set()
        self.ctes: set[str] = set()
        self.table_function_ids: set[int] = set()

    def check(self, nodes: list[dict[str, Any]]) -> None:
        self.ctes = _cte_names(nodes)
        for node in nodes:  # table functions first: their FUNCTION node is checked against their own list
            if node.get("type") == "TABLE_FUNCTION" and "class" not in node:
                self._table_function(node)
        for node in nodes:
            if "class" in node:
                self._expression(node)
            elif isinstance(node.get("type"), str):
                self._other(node)

    def _expression(self, node: dict[str, Any]) -> None:
        cls = node.get("class")
        if cls not in ALLOWED_CLASSES:
            raise QueryRefused(
                f"The query box does not run statements with {_shown(str(cls)).lower().replace('_', ' ')} "
                "expressions (e.g. prepared-statement parameters or DEFAULT)."
            )
        if cls in ("FUNCTION", "WINDOW") and id(node) not in self.table_function_ids:
            self._function(node, ALLOWED_FUNCTIONS, "function")

    def _function(self, node: dict[str, Any], allowed: frozenset[str], kind: str) -> None:
        name = str(node.get("function_name", ""))
        if node.get("schema") or node.get("catalog"):
            raise QueryRefused(
                f"Functions are called by their plain name in the query box; `{_shown(name)}` was called "
                "through a schema or catalog and was refused."
            )
        key = name.lower()
        if key not in allowed:
            raise QueryRefused(
                f"The {kind} `{_shown(name)}` is not allowed in the query box: only functions that compute on "
                "the published tables are (no file readers, settings, environment, catalogs or other SQL). "
                "Query the published tables by name instead."
            )
        self.called.add(key)

    def _table_function(self, node: dict[str, Any]) -> None:
        function = node.get("function")
        if not isinstance(function, dict):
            raise QueryRefused("The query box could not read this table function call; it was refused.")
        self.table_function_ids.add(id(function))
        self._function(function, ALLOWED_TABLE_FUNCTIONS, "table function")

    def _other(self, node: dict[str, Any]) -> None:
        kind = node["type"]
        if kind == "BASE_TABLE":
            self._table(node)
        elif kind == "SHOW_REF":
            self._show(node)
        elif kind not in TABLE_REFS and kind not in OTHER_NODE_TYPES:
            raise QueryRefused(
                f"The query box does not run statements using {_shown(kind).lower().replace('_', ' ')}; "
                "write it as a plain SELECT over the published tables."
            )

    def _show(self, node: dict[str, Any]) -> None:
        show_type = node.get("show_type")
        name = str(node.get("table_name") or "")
        if show_type == "SHOW_SPECIAL":
            if name not in ALLOWED_SHOW_SPECIAL:
                raise QueryRefused("Only SHOW TABLES and SHOW ALL TABLES are allowed in the query box.")
        elif show_type in ("DESCRIBE", "SUMMARY", "SHOW"):
            if name and node.get("query") is None:
                self._table({"table_name": name, "schema_name": node.get("schema_name", ""),
                             "catalog_name": node.get("catalog_name", "")})  # fmt: skip
        else:
            raise QueryRefused("This SHOW statement is not allowed in the query box.")

    def _table(self, node: dict[str, Any]) -> None:
        name = str(node.get("table_name", ""))
        schema = str(node.get("schema_name") or "").lower()
        catalog = str(node.get("catalog_name") or "").lower()
        key = name.lower()
        refused = QueryRefused(
            f"`{_shown(name)}` is not a published table you can query here. Query the published tables by "
            "name (SHOW TABLES lists them); files, other databases and system catalogs are not reachable."
        )
        if not _PLAIN_NAME.match(name):  # a path or file name: DuckDB would read it as a file
            raise QueryRefused(
                "Files cannot be read in the query box: a table name in quotes that is not a plain name is "
                "taken as a file. Query the published tables by name (SHOW TABLES lists them)."
            )
        if schema == "information_schema" and not catalog:
            if key not in ALLOWED_INFORMATION_SCHEMA:
                raise refused
            return
        if catalog and catalog not in self.catalogs:
            raise refused
        if schema and schema not in ("main", *self.catalogs):
            raise refused
        if not catalog and not schema and key in self.ctes:
            return
        if self.tables is not None and key not in self.tables:
            raise refused
        self.read.add(key)


def check(sql: str, *, tables: Collection[str] | None = None, catalogs: Collection[str] = ()) -> Vetted:
    """Vet one statement; return it with what it reads and calls, or raise QueryRefused.

    ``tables``: the table names the caller may read (None: any plain name; the connection decides).
    ``catalogs``: the attached databases the caller may name (e.g. ``published``).
    """
    text = (sql or "").strip()
    while text.endswith(";"):
        text = text[:-1].rstrip()
    if not text:
        raise QueryRefused("Type a SELECT, WITH, DESCRIBE or SHOW TABLES statement to run.")
    if len(text) > MAX_QUERY_CHARS:
        raise QueryRefused(f"The statement is longer than {MAX_QUERY_CHARS:,} characters; shorten it.")
    if "\x00" in text:
        raise QueryRefused("The statement contains a NUL character; retype it.")
    try:
        statements = duckdb.extract_statements(text)
    except duckdb.Error:
        raise QueryRefused("The statement could not be parsed as SQL.") from None
    if len(statements) != 1:
        raise QueryRefused(
            f"Only one statement at a time can run here; this text holds {len(statements)}. "
            "Remove the extra statements (and any `;` between them)."
        )
    if statements[0].type != duckdb.StatementType.SELECT:
        raise QueryRefused(
            "Only reads are allowed here (SELECT, WITH, DESCRIBE, SHOW TABLES, SUMMARIZE); this "
            f"{str(statements[0].type.name).replace('_', ' ')} statement was refused. The published warehouse "
            "is read-only: writes, ATTACH, COPY, EXPORT, PRAGMA, SET, CALL and INSTALL/LOAD are refused."
        )
    tree = _parse(text)
    if len(tree.get("statements", [])) != 1:
        raise QueryRefused("Only one statement at a time can run here.")
    checker = _Checker(tables, catalogs)
    checker.check(list(_nodes(tree["statements"][0])))
    return Vetted(text, frozenset(checker.read), frozenset(checker.called))


def check_query(sql: str, *, tables: Collection[str] | None = None, catalogs: Collection[str] = ()) -> str:
    """Return the statement (without a trailing semicolon) if it is a single allowed read; else raise
    QueryRefused. The dashboard's SQL page and the CLI both call this."""
    return check(sql, tables=tables, catalogs=catalogs).sql
