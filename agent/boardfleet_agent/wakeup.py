"""A sleep that another thread can cut short, immune to wall-clock jumps.

``threading.Event.wait(timeout)`` turns the timeout into an absolute wall-clock deadline
on Python < 3.11 (``sem_timedwait``; bpo-41710), and boards run 3.8: a clock set back
by an hour would stall a sampler for an hour. :class:`Wakeup` waits in ``poll()`` on a
pipe instead; its timeout is relative and the kernel measures it on the monotonic clock.
"""

import contextlib
import os
import select
from typing import Optional


class Wakeup:
    """A thread sleeps in :meth:`sleep`; any thread ends that sleep with :meth:`wake`.

    A wake that arrives while nobody sleeps is kept: the next sleep returns at once.
    Two file descriptors stay open until :meth:`close`.
    """

    def __init__(self) -> None:
        self._r, self._w = os.pipe()
        os.set_blocking(self._r, False)
        os.set_blocking(self._w, False)
        self._poll = select.poll()
        self._poll.register(self._r, select.POLLIN)

    @property
    def signal_fd(self) -> int:
        """The write end, for :func:`signal.set_wakeup_fd`: a signal then wakes too."""
        return self._w

    def wake(self) -> None:
        # Pipe full: a wake is already pending. Closed: nobody is left to wake.
        with contextlib.suppress(OSError):
            os.write(self._w, b"!")

    def sleep(self, timeout: Optional[float]) -> bool:
        """Sleep up to ``timeout`` seconds (None: until woken); True if woken."""
        if not self._poll.poll(None if timeout is None else timeout * 1000):
            return False
        with contextlib.suppress(BlockingIOError):
            while os.read(self._r, 512):
                pass
        return True

    def close(self) -> None:
        """Close the pipe (once; later calls do nothing)."""
        if self._r >= 0:
            os.close(self._r)
            os.close(self._w)
            self._r = self._w = -1
