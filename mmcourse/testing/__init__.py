"""Helpers for testing mmcourse without a network: stand-ins for the hub models."""
