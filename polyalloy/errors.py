"""The errors a user can cause; the CLI prints their message as one line and exits non-zero."""


class PolyalloyError(Exception):
    """Bad input or an impossible request: the message says what to change."""


class ConfigError(PolyalloyError):
    """An unknown key or a value out of range in a config, a scene or ``--set``."""


class SimulationError(PolyalloyError):
    """The simulation blew up (NaN/Inf) or cannot run; the message names the frame and a fix."""


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped the command: ``signum`` says which, ``detail`` what is on disk."""

    def __init__(self, signum: int, detail: str = "files already written are complete"):
        import signal

        super().__init__(f"interrupted by {signal.Signals(signum).name}; {detail}")
        self.signum, self.detail = signum, detail
