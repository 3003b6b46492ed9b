"""A registry with token auth on, shared by the module's tests: users made with
`registry users add`, a robot with `registry tokens create`, rules in the config."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from authutil import GROUPS, PASSWORDS, add_robot, add_user, auth_config
from harness import launch


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    """(registry, robot token) with users reader, writer, admin and robot ci-bot."""
    # Callers here fail to log in on purpose, many times: not limited (see the
    # rate-limit test, with a registry of its own).
    reg = launch(tmp_path_factory.mktemp("auth"), config=auth_config("login_attempts = 100000\n"))
    for name, password in PASSWORDS.items():
        add_user(reg, name, password, GROUPS[name])
    robot = add_robot(reg, "ci-bot", "repository:team/ci/*:pull,push")
    yield reg, robot
    reg.stop()
