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
con.execute(setup)
for q in queries:
    rows = con.sql(q).fetchall()
    print(json.dumps([[None if v is None else str(v) for v in row] for row in rows]))
