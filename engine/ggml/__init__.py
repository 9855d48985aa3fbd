"""The ggml compute backend: llama.cpp's kernels through llama-cpp-python's low-level API.

Installed with the ``ggml`` extra (``pip install -e '.[ggml]'``), which builds
llama-cpp-python from source (cmake and a C/C++ compiler, about 6 minutes on two cores).
Everything here imports the binding lazily: without the extra the engine runs on numpy.
"""

from __future__ import annotations

import importlib.util

INSTALL_HINT = ("the ggml backend needs the ggml extra: pip install 'sparkedit[ggml]' "
                "(it builds llama-cpp-python from source and needs cmake and a C/C++ "
                "compiler, e.g. apt-get install cmake g++)")


def binding_available() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None and \
        importlib.util.find_spec("gguf") is not None


def require_binding() -> None:
    """Raise ImportError with what to install when the binding is missing or broken."""
    try:
        import gguf  # noqa: F401
        import llama_cpp  # noqa: F401
    except ImportError as exc:
        raise ImportError(f"{INSTALL_HINT} ({exc})") from exc
    except OSError as exc:  # the shared library is there but cannot be loaded
        raise ImportError(f"llama-cpp-python is installed but its library does not load "
                          f"({exc}); reinstall it: pip install --force-reinstall "
                          "--no-cache-dir llama-cpp-python") from exc
