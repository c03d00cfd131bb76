"""The public pages that clients see."""
