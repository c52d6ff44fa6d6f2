"""The core's own plugins: registered through the same hooks as any extension."""

__all__: list[str] = []
