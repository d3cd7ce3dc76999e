"""Small helpers that every layer may use: atomic file writes, CPU-feature probes, logging set-up.

Nothing here imports another part of vov3d.
"""
