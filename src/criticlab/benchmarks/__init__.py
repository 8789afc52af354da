"""Loaders that return Examples with gold labels."""
