"""Moved to ``vov3d.accel.allocator``; this name stays until ``benchmarks/data.py`` imports the new one."""

from vov3d.accel.allocator import describe_allocator, keep_freed_memory, preloaded_allocator

__all__ = ["describe_allocator", "keep_freed_memory", "preloaded_allocator"]
