"""Outbound actions."""
