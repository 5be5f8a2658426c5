"""Claude behind reverie: the `anthropic` reasoner, the LLM critic, Claude consolidation
dreams and the memory tool over LMDB memory (issue 5)."""

__all__: list[str] = []
