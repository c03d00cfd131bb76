"""Availability: which times can be booked, and by whom."""
