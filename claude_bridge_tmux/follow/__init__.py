"""Following a turn:

transcript tailing (transcript), the parentUuid tree (tree), the pure turn engine (engine), the pane
session loop (session).
"""
