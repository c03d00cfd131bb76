"""Workflows: the scenario language, its checks, the lifecycle, and the stored versions."""
