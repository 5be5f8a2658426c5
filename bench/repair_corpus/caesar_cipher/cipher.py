"""Caesar and ROT13 ciphers over ASCII letters; everything else passes through."""

ALPHABET_SIZE = 25


def shift_char(ch: str, key: int) -> str:
    if not (ch.isascii() and ch.isalpha()):
        return ch
    base = ord("a") if ch.islower() else ord("A")
    return chr(base + (ord(ch) - base + key) % ALPHABET_SIZE)


def encrypt(text: str, key: int) -> str:
    return "".join(shift_char(ch, key) for ch in text)


def decrypt(text: str, key: int) -> str:
    return encrypt(text, -key)


def rot13(text: str) -> str:
    return encrypt(text, 13)


def crack(ciphertext: str, known_word: str) -> int | None:
    """The key under which `known_word` appears in the plaintext, if any."""
    for key in range(ALPHABET_SIZE):
        if known_word in decrypt(ciphertext, key):
            return key
    return None
