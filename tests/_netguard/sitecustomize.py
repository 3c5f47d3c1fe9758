# Loaded by every Python process started under the test suite (the root conftest puts
# this folder on PYTHONPATH): notebook kernels get the same network block as the tests.
import os

if os.environ.get("MMCOURSE_BLOCK_NETWORK") == "1":
    import netguard

    netguard.install()
