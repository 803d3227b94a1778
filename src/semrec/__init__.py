"""semrec: recommender systems that learn from behaviour and item meaning together."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("semrec")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+local"
