"""Built-in agents: the dreamer, the critics, the reasoners and the Claude agents."""

__all__: list[str] = []
