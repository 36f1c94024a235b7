# The stdlib's threading namespace, with the native primitives in place.
from threading import *  # noqa: F401,F403
from threading import __all__ as __all__

from cconc._cconc import Event as Event, Lock as Lock, RLock as RLock
