"""The agent's background loops: a named daemon thread calling a step until stopped.

Between steps it sleeps on a :class:`~boardfleet_agent.wakeup.Wakeup` (no wall-clock
deadline). The thread closes that pipe as it ends: a stop that gave up on a run blocked
in a read leaves it open just as long as the run lasts, and a later wake is a no-op.
"""

import threading
from typing import Callable, Optional

from boardfleet_agent.log import log
from boardfleet_agent.wakeup import Wakeup


class LoopThread:
    """Calls ``step`` until stopped; ``step`` returns the seconds to sleep (None: until
    woken). A step that raises is logged and ends the thread."""

    def __init__(self, name: str, step: Callable[[], Optional[float]]) -> None:
        self.name = name
        self._step = step
        self._stopping = False
        self._lock = threading.Lock()  # guards _wakeup against a wake racing its close
        self._wakeup: Optional[Wakeup] = None
        self._thread: Optional[threading.Thread] = None

    def start(self) -> None:
        """Start the thread (once; not after :meth:`stop`)."""
        if self._thread is not None or self._stopping:
            return
        self._wakeup = Wakeup()
        self._thread = threading.Thread(target=self._run, args=(self._wakeup,),
                                        name=self.name, daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wake(self) -> None:
        """End the current sleep, or the next one at once."""
        with self._lock:
            if self._wakeup is not None:
                self._wakeup.wake()

    def stop(self, timeout: float) -> bool:
        """Ask the loop to end and wait up to ``timeout`` seconds (0: just ask); True
        once the thread has ended or never started."""
        self._stopping = True
        self.wake()
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.alive

    def _run(self, wakeup: Wakeup) -> None:
        try:
            while not self._stopping:
                wakeup.sleep(self._step())
        except Exception:
            log.exception("thread %s failed and ended", self.name)
        finally:
            with self._lock:
                self._wakeup = None
                wakeup.close()
