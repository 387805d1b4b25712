"""Validates audit log lines against docs/audit-record.schema.json.

Usage: validate_schema.py SCHEMA LOG... ; a file named *.checkpoints.jsonl is
checked against the schema's $defs/checkpoint, every other file against the
whole schema. Prints "N lines valid" or every failure (and exits 1).
"""

import json
import sys

import jsonschema

schema_path, *logs = sys.argv[1:]
with open(schema_path) as f:
    schema = json.load(f)
jsonschema.Draft202012Validator.check_schema(schema)
checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
whole = jsonschema.Draft202012Validator(schema, format_checker=checker)
checkpoint = jsonschema.Draft202012Validator(
    {"$ref": "#/$defs/checkpoint", "$defs": schema["$defs"]}, format_checker=checker
)
valid, failures = 0, []
for log in logs:
    validator = checkpoint if log.endswith(".checkpoints.jsonl") else whole
    with open(log) as f:
        for n, line in enumerate(f, 1):
            error = jsonschema.exceptions.best_match(validator.iter_errors(json.loads(line)))
            if error is not None:
                failures.append(f"{log}:{n}: {error.message} at {list(error.absolute_path)}")
            else:
                valid += 1
if failures or valid == 0:
    print("\n".join(failures) or "no lines", file=sys.stderr)
    sys.exit(1)
print(f"{valid} lines valid")
