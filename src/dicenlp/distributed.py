"""A failure on one process stops every process of a distributed run, with its message, instead of a hang.

Without care, an exception on one rank leaves the others waiting in the next collective call (a barrier, an
all-reduce) until the process-group timeout (30 minutes): e.g. rank 0 failing inside
``accelerator.main_process_first()`` skips the barrier the others wait in. Here the ranks compare notes at a few
check points (reading and tokenising the data, every training step's loss) and, when any rank failed, every rank
raises: the failing rank its own exception (traceback kept), the others ``OtherRankFailed`` naming it. Only one
process reports (``quiet`` on the rest), so the console shows the message once.

Single-process runs skip every collective call.
"""

from __future__ import annotations

from typing import Callable, TypeVar

from accelerate import Accelerator

from dicenlp.errors import OtherRankFailed, UserError

T = TypeVar("T")


def agree_on_failure(accelerator: Accelerator, error: BaseException | None) -> None:
    """A check point: every process passes its own exception (or None); if any process failed, every process
    raises. Must be reached by every process (it is a collective call)."""
    if accelerator.num_processes == 1:
        if error is not None:
            raise error
        return
    from accelerate.utils import gather_object

    report = None if error is None else (type(error).__name__, str(error), isinstance(error, UserError))
    failed = [(rank, r) for rank, r in enumerate(gather_object([report])) if r is not None]
    if not failed:
        return
    first_rank, (kind, message, _) = failed[0]
    if error is None:
        error = OtherRankFailed(f"stopped because process {first_rank} failed: {kind}: {message}")
    error.quiet = accelerator.process_index != first_rank  # the first failing process reports, the others not
    raise error


def run_everywhere(accelerator: Accelerator, fn: Callable[[], None], *, main_first: bool = False) -> None:
    """``fn()`` on every process (with ``main_first``, on the main process before the others, e.g. to fill a
    cache the others then read); an exception on any process is raised on every process."""

    def attempt() -> BaseException | None:
        try:
            fn()
        except Exception as err:  # noqa: BLE001  (handed to agree_on_failure, which re-raises it)
            return err
        return None

    if not main_first or accelerator.num_processes == 1:
        agree_on_failure(accelerator, attempt())
        return
    agree_on_failure(accelerator, attempt() if accelerator.is_main_process else None)
    agree_on_failure(accelerator, None if accelerator.is_main_process else attempt())


def on_main_process(accelerator: Accelerator, fn: Callable[[], T]) -> T:
    """``fn()`` on the main process only (e.g. deciding about the run folder); its result is sent to every process
    and its exception raised on every process."""
    result, error = None, None
    if accelerator.is_main_process:
        try:
            result = fn()
        except Exception as err:  # noqa: BLE001  (handed to agree_on_failure, which re-raises it)
            error = err
    agree_on_failure(accelerator, error)
    if accelerator.num_processes == 1:
        return result
    from accelerate.utils import broadcast_object_list

    return broadcast_object_list([result])[0]


__all__ = ["agree_on_failure", "on_main_process", "run_everywhere"]
