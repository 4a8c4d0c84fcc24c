"""The web app (``tunesmith serve``)."""
