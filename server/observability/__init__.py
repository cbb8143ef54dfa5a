"""What an operator sees of the process: its log lines and Prometheus metrics (later traces)."""
