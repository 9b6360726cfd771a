"""Pool mode: a daemon keeps warm claude panes and serves many ``claude-bridge -p`` calls through them.

Modules: ``protocol`` (socket path, framing, peer check), ``client`` (the light side a ``-p`` call
runs), ``key`` (which panes may serve which job), ``jobqueue`` (fair waiting, behind an interface),
``panes`` (warm pane lifecycle and recycling), ``daemon`` (the server), ``api`` (Python API:
``Pool.ask``, ``Session``).
"""
