"""Code tasks: candidates are edits of a project's files, judged by running its tests. Among its
modules: the test-output parser (`testout`) and the offline program-repair engine (`repair`, with
its catalogue in `mutate`/`scoped`/`edits` and fault localisation in `localise`)."""

__all__: list[str] = []
