"""Runs SQL against an audit log with DuckDB, as docs/audit-queries.md shows.

Usage: duckdb_query.py DIR SETUP_SQL QUERY_SQL... ; runs SETUP_SQL (the view)
in DIR, then prints one JSON line per query: its rows, values as strings.
"""

import json
import os
import sys

import duckdb

directory, setup, *queries = sys.argv[1:]
os.chdir(directory)
con = duckdb.connect()
# DuckDB's Python client draws a progress bar on stdout for any statement
# that runs longer than 2 s (a loaded CI machine), which would break the
# one-JSON-line-per-query output.
con.execute("SET enable_progress_bar = false")
con.execute(setup)
for q in queries:
    rows = con.sql(q).fetchall()
    print(json.dumps([[None if v is None else str(v) for v in row] for row in rows]))
