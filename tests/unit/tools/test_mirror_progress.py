"""The mirror builder's progress lines and step locks (tools/mirror_build.py)."""

import importlib.util
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[3] / "tools"


@pytest.fixture(scope="module")
def mb():
    spec = importlib.util.spec_from_file_location("mirror_build", TOOLS / "mirror_build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("line", "said"), [
    ("[ 45%] Building CXX object src/CMakeFiles/llama.dir/llama-model.cpp.o", "45% llama-model.cpp"),
    ("[  3%] Building C object ggml/src/CMakeFiles/ggml-base.dir/ggml.c.o", "3% ggml.c"),
    ("[100%] Linking CXX executable ../../bin/llama-server", "100% Linking CXX executable ../../bin/llama-server"),
    ("[ 10%] Built target ggml-base", None),
    ("-- Configuring done", None),
])
def test_cmake_status_condenses_progress_lines(mb, line, said):
    assert mb.cmake_status(line) == said


def test_pip_status_counts_collected_distributions(mb):
    status = mb.pip_status()
    assert status("Collecting open-webui==0.12.4") == "1 collected, last: Collecting open-webui==0.12.4"
    assert status("WARNING: Location 'file:///opt/pypi' is ignored") is None
    assert status("  Downloading torch-2.13.0.whl (180 MB)") == "1 collected, last: Downloading torch-2.13.0.whl (180 MB)"
    status("Collecting fastapi")
    assert status("Saved ./fastapi.whl").startswith("2 collected")


def test_run_with_progress_says_how_far_it_got(mb, capsys):
    script = "import time\nfor i in range(3):\n    print(f'[ {30 * (i + 1)}%] Building C object x/f{i}.c.o', flush=True)\n    time.sleep(0.3)\n"
    mb.run_with_progress([sys.executable, "-c", script], "compile", mb.cmake_status, every=0.4)
    err = capsys.readouterr().err
    assert "[mirror] compile: 0m00s, " in err
    assert "% f" in err
    assert err.rstrip().splitlines()[-1].startswith("[mirror] compile: done in 0m0")


def test_run_with_progress_shows_the_end_of_a_failure(mb, capsys):
    script = "print('first'); print('the real error'); raise SystemExit(3)"
    with pytest.raises(subprocess.CalledProcessError):
        mb.run_with_progress([sys.executable, "-c", script], "step")
    err = capsys.readouterr().err
    assert "the real error" in err and "step: FAILED after" in err


def test_a_step_waits_for_another_build_of_the_same_step(mb, tmp_path, capsys):
    order = []

    def other():
        with mb.step_lock(tmp_path, "llama-server"):
            order.append("other start")
            time.sleep(0.5)
            order.append("other end")

    t = threading.Thread(target=other)
    t.start()
    time.sleep(0.1)
    with mb.step_lock(tmp_path, "llama-server"):
        order.append("mine")
    t.join()
    assert order == ["other start", "other end", "mine"]
    assert "another build of this step is running" in capsys.readouterr().err
    with mb.step_lock(tmp_path, "model"):  # other steps are not held up
        pass
