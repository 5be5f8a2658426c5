"""Deploy configs and sample tasks shipped with the package (`local.toml`, `anthropic.toml`, `tasks/`)."""

__all__: list[str] = []
