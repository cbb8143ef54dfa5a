"""Behaviour as plain async functions: reads via loaders, writes in transactions."""
