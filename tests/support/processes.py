"""PIDs of child processes that session-scoped fixtures own on purpose (not leaks)."""

session_children: set[int] = set()
