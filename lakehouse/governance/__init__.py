"""Roles, grants and column masking: who may read which table, and what they see of it."""
