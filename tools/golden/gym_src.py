"""gym_src.py - import Gymnasium 1.x from a source tree (the folder holding gymnasium/), for
gen_gym_traj.py and tools/bench/gym_env_bench.py. Nothing of Gymnasium is copied into this project.

Gymnasium's import needs numpy, cloudpickle and typing_extensions (Debian: python3-numpy,
python3-cloudpickle, python3-typing-extensions) and farama_notifications, from which it only reads
a dict: when that is missing, an empty stand-in is written to a temporary folder.
"""
import os
import sys
import tempfile


def import_gymnasium(gym_dir):
    sys.path.insert(0, os.path.abspath(gym_dir))
    try:
        import farama_notifications  # noqa: F401
    except ImportError:
        stub = tempfile.mkdtemp(prefix="farama_stub_")
        os.makedirs(os.path.join(stub, "farama_notifications"))
        with open(os.path.join(stub, "farama_notifications", "__init__.py"), "w") as f:
            f.write("notifications = {}\n")
        sys.path.insert(0, stub)
    import gymnasium as gym

    if not gym.__version__.startswith("1."):
        sys.exit("need Gymnasium 1.x, found %s in %s" % (gym.__version__, gym.__file__))
    return gym
