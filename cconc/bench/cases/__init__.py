"""Importing this package registers every benchmark case, one module per concern."""
from . import threading_cases  # noqa: F401
from . import futures_cases  # noqa: F401
from . import queue_cases  # noqa: F401
from . import selectors_cases  # noqa: F401
from . import multiprocessing_cases  # noqa: F401
from . import pool_cases  # noqa: F401
from . import process_executor_cases  # noqa: F401
