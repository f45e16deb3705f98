"""Loaded, compiled rulesets of a rules folder: the engine's entry point (evaluate one event)."""
