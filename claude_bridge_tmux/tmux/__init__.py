"""tmux: a private server and pane per run (pane), the launch trampoline (launch), reading the screen (screen)."""
