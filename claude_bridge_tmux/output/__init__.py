"""Pure output:

transcript records -> claude -p messages and result (translate), stream writer (emit), per-version
shapes and prices, --json-schema.
"""
