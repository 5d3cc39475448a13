"""Prompt complexity classifier (placeholder until the classifier lands in this issue)."""
