"""Watchlists and alerts: saved Lucene-style queries matched against every stored article."""
