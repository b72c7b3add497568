"""Which driver runs an engine: the one place that knows every driver module."""

from __future__ import annotations

from app.runtime.base import Driver
from app.runtime.docker import DockerDriver
from app.runtime.engines import DriverSettings, Engine
from app.runtime.simulated import SimulatedDriver
from app.runtime.swarm import SwarmDriver


def build_driver(engine: Engine, settings: DriverSettings) -> Driver:
    if engine.driver == "simulated":
        return SimulatedDriver(engine.capacity)
    if engine.driver == "swarm":
        return SwarmDriver(engine, settings)
    return DockerDriver(engine, settings)
