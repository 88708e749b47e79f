"""polyalloy: a liquid-metal physics toy (MLS-MPM in Taichi).

Call ``polyalloy.init()`` once, build a ``Scene`` (or load a scene script with
``load_scene``), run it with ``Simulation``. Nothing here starts Taichi at import.
"""
from polyalloy.errors import ConfigError, PolyalloyError, SimulationError
from polyalloy.runtime import init

__version__ = "0.1.0"
__all__ = ["init", "PolyalloyError", "ConfigError", "SimulationError", "__version__"]
