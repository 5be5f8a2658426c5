"""Plan tasks: the task spec and its evaluation (`spec`), and the critics' judgements (`judges`)."""

__all__: list[str] = []
