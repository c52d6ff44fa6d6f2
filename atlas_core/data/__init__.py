"""Datasets: scene containers, the blender loader and the procedural scene maker."""

__all__: list[str] = []
