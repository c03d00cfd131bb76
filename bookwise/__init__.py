"""Bookwise."""
