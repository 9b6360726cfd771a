"""argv -> plan: claude's option table parsed like commander (flags), print-mode checks and the run plan (plan), stdin."""
