"""`packrat ui`: serve the Streamlit dashboard on 127.0.0.1 and print its address.

The verb *execs* Streamlit (``os.execv``): the ``packrat ui`` process becomes the server,
so SIGTERM, SIGINT or even SIGKILL sent to the pid the user started stop the server
itself and free the port; no orphaned child is left listening on 127.0.0.1.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import sys
from pathlib import Path

import typer

from ui.cli.common import BadInput

APP = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"
DEFAULT_PORT = 8501
ADDRESS = "127.0.0.1"


def port_is_free(port: int, address: str = ADDRESS) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((address, port))
        except OSError:
            return False
    return True


def free_port(address: str = ADDRESS) -> int:
    """A port the OS says is free now on ``address``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


def streamlit_command(port: int, app: Path = APP) -> list[str]:
    """The `streamlit run` command line the verb executes (headless, loopback only, no
    telemetry, uploads capped at the largest input the pages take)."""
    from ui.dashboard.data import HISTORY_UPLOAD_MB

    return [
        sys.executable, "-m", "streamlit", "run", str(app),
        "--server.headless", "true",
        "--server.address", ADDRESS,
        "--server.port", str(port),
        "--browser.gatherUsageStats", "false",
        "--server.maxUploadSize", str(HISTORY_UPLOAD_MB),
    ]


def exec_streamlit(command: list[str]) -> None:
    """Replace this process with ``command`` (``os.execv``); returns only if it is patched
    out in a test. Raises BadInput when the executable cannot be started."""
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execv(command[0], command)
    except OSError as exc:
        raise BadInput(f"cannot start streamlit ({command[0]}): {exc.strerror or exc}") from None


def register(app: typer.Typer) -> None:
    @app.command("ui")
    def ui_cmd(
        port: int | None = typer.Option(None, "--port", help=f"Port on {ADDRESS} (default {DEFAULT_PORT}, or a free one if it is taken)."),
        data_dir: str | None = typer.Option(None, "--data-dir", help="A directory whose profile and trace files the Sweep page may read (besides built-in profiles and uploads; default: none)."),
    ) -> None:
        """Serve the Streamlit dashboard (Profiles, Planner, Simulator, Verification, Hardware) on 127.0.0.1.

        The process becomes the Streamlit server (exec): stopping it (Ctrl-C, SIGTERM, SIGKILL) frees the port."""
        if importlib.util.find_spec("streamlit") is None or importlib.util.find_spec("plotly") is None:
            raise BadInput("the dashboard needs streamlit and plotly: pip install -e '.[ui]' (make ui does it)")
        if port is not None and not 1 <= port <= 65535:
            raise BadInput(f"--port must be in 1..65535, got {port}")
        if port is None:
            port = DEFAULT_PORT if port_is_free(DEFAULT_PORT) else free_port()
        elif not port_is_free(port):
            raise BadInput(f"--port {port} is already in use on {ADDRESS}")
        if data_dir is not None:
            if not os.path.isdir(data_dir):
                raise BadInput(f"--data-dir {data_dir!r} is not a directory")
            from ui.dashboard.data import DATA_DIR_ENV

            os.environ[DATA_DIR_ENV] = os.path.realpath(data_dir)  # the server (this process, exec'd) reads it
        typer.echo(f"Packrat dashboard: http://{ADDRESS}:{port}  (Ctrl-C stops it)", err=False)
        exec_streamlit(streamlit_command(port))  # this process becomes the server: signals reach it
        raise typer.Exit(0)
