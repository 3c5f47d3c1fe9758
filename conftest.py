"""Suite-wide setup, for the unit tests and for nbval's notebook kernels alike."""
import os
import pathlib
import sys

_GUARD = pathlib.Path(__file__).parent / "tests" / "_netguard"


def pytest_configure(config):
    # Block outgoing sockets here and in every subprocess (notebook kernels, torchrun).
    os.environ["MMCOURSE_BLOCK_NETWORK"] = "1"
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(_GUARD), str(_GUARD.parent.parent)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    )
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("MPLBACKEND", "Agg")
    sys.path.insert(0, str(_GUARD))
    import netguard

    netguard.install()


def pytest_report_header(config):
    if os.environ.get("MMCOURSE_NETNS") == "1":
        return "network: a namespace with only loopback (tools/offline.sh), plus the in-process guard"
    return "network: the in-process guard only (run through tools/offline.sh for a namespace without a network)"


# nbval waits a fixed 5 s for a cell's output messages once the cell has finished; on a busy
# machine the kernel can be slower than that to flush them, and the cell fails although it
# ran. The wait is an attribute of nbval's cell items (no option for it): raise it here.
NBVAL_OUTPUT_TIMEOUT_S = 120


def pytest_addoption(parser):
    parser.addoption("--nbval-output-timeout", type=float, default=NBVAL_OUTPUT_TIMEOUT_S,
                     help="seconds nbval waits for a finished cell's output messages (nbval's own: 5)")


def pytest_collection_modifyitems(config, items):
    wait = config.getoption("--nbval-output-timeout")
    for item in items:
        if type(item).__name__ == "IPyNbCell" and hasattr(item, "output_timeout"):
            item.output_timeout = max(item.output_timeout, wait)
