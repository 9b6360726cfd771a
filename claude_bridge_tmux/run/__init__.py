"""Run orchestration: the cold path (cold), the system/init probe (init_probe), per-run logs (runlog)."""
