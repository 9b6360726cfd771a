"""Host preparation:

~/.claude.json pre-seeding and trust leases (preseed), per-run hook settings (hooks), private dirs
(paths), processes (proc).
"""
