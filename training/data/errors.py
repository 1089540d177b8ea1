class DataError(ValueError):
    """A dataset file or folder is missing, truncated or not in the expected layout."""
