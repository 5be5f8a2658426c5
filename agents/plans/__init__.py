"""Plan tasks: the task spec and its evaluation (`spec`), and the critics' judgements (`judges`)."""
