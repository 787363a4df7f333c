"""The one exception type users see: every boundary check raises `CeilingError`."""


class CeilingError(Exception):
    """Bad input or a broken artefact. The message says what was wrong and what is valid."""
