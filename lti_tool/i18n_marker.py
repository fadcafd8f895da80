"""Mark a string for the translation catalogue where it is defined; it is translated where it is shown."""


def N_(message: str) -> str:
    return message
