# cconc.selectors: the stdlib's selectors namespace, with native selector classes.
import sys
from selectors import *  # noqa: F401,F403
from selectors import EVENT_READ as EVENT_READ, EVENT_WRITE as EVENT_WRITE
from selectors import BaseSelector as BaseSelector, SelectorKey as SelectorKey

from cconc._cconc import PollSelector as PollSelector, SelectSelector as SelectSelector

if sys.platform == "linux":
    from cconc._cconc import EpollSelector as EpollSelector

if sys.platform != "linux" and sys.platform != "win32":
    from cconc._cconc import KqueueSelector as KqueueSelector

DefaultSelector: type[BaseSelector]
