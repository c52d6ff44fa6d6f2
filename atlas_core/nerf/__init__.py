"""The NeRF pieces: rays, cameras, encodings, fields, samplers, occupancy grids,
compositing, renderers, losses, metrics and the pipeline that joins them."""

__all__: list[str] = []
