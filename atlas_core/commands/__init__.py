"""Back-ends of the commands that use a trained run: mesh export and videos."""

__all__: list[str] = []
