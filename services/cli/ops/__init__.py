"""Operator commands' logic: consumer lag, dead letters, replay from stored data.

Plain async functions over a broker address and a DB session factory; the CLI
(``services/writer/cli.py``) only parses options and prints. Nothing here opens a client at
import time.
"""
