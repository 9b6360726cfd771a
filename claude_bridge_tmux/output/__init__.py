"""Pure output:

transcript records -> claude -p messages (messages, partial), result (result), output modes and exit codes
(modes), JSON.stringify (jsjson), stream writer (emit), per-version shapes and prices, --json-schema.
"""
