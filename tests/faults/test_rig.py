"""The rig's own parts that scenarios rely on."""

import os
import signal

import pytest

from tests.helpers import wait_for

pytestmark = pytest.mark.faults


def test_supervisor__a_supervised_worker_that_exits_is_started_again(rig):
    worker = rig.worker(supervised=True)
    first = worker.process.pid
    os.killpg(first, signal.SIGKILL)

    wait_for(
        lambda: worker.running and worker.process.pid != first,
        timeout=60,
        message="the worker to be started again",
        describe=rig.describe,
    )
    assert rig.supervisor.restarts == [("worker", -signal.SIGKILL)]
    accepted = rig.submit(["it works again, great"] * 3)
    rig.wait_all_final(len(accepted), timeout=60)
