"""PostgreSQL connection policy beyond the engine itself (server/database.py builds that).

Owns how statements are bounded (`statement_timeout` as a startup parameter, or
per transaction behind PgBouncer: statement_timeout.py) and the connection
budget a process checks against `max_connections` at startup
(connection_budget.py).
"""

from server.postgres.connection_budget import ConnectionBudget, check_connection_budget
from server.postgres.statement_timeout import limit_statements

__all__ = ["ConnectionBudget", "check_connection_budget", "limit_statements"]
