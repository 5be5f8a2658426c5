"""File-name helpers for an upload service ('/'-separated paths)."""

ALLOWED = frozenset({".png", ".jpg", ".pdf"})


def split_ext(path: str) -> tuple[str, str]:
    """('dir/archive.tar', '.gz') for 'dir/archive.tar.gz'; dotfiles have no extension."""
    slash = path.rfind("/")
    dot = path.find(".")
    if dot <= slash + 1:
        return path, ""
    return path[:dot], path[dot:]


def extension(path: str) -> str:
    return split_ext(path)[1].lower()


def with_ext(path: str, ext: str) -> str:
    if ext and not ext.startswith("."):
        ext = "." + ext
    return split_ext(path)[0] + ext


def is_allowed(path: str) -> bool:
    return extension(path) in ALLOWED
