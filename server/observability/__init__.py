"""What an operator sees of the process: its log lines (later metrics and traces)."""
