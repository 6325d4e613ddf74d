"""Third-party noise out of the user's terminal, unless asked for.

Converting a block for a phone imports litert-torch, which imports torchao
(its C++ kernels log "Failed to load ..._C_mxfp8...so" when the wheel's
build does not match torch), TensorFlow (absl's oneDNN banner) and triggers
torch's pytree deprecation warning (logged by torch.utils._pytree).  Neither is the user's concern nor actionable by them, so the CLI
silences them before any command runs; `HWNAS_VERBOSE=1` shows them again
for whoever debugs a conversion.
"""

from __future__ import annotations

import logging
import os
import warnings
from typing import Mapping

__all__ = ["quiet_third_party", "NOISY_LOGGERS"]

#: Loggers whose warnings are about their own build, never about the user's input.
NOISY_LOGGERS = ("torchao", "torch.utils._pytree", "torch._dynamo", "torch._inductor", "absl", "litert_torch",
                 "ai_edge_torch")

_MESSAGES = (r".*_pytree.*", r".*pytree.*deprecated.*", r".*torch\.ao\.quantization.*deprecated.*",
             r".*TypedStorage is deprecated.*")


def quiet_third_party(env: Mapping[str, str] | None = None) -> bool:
    """Silence known third-party noise (returns False, leaving it on, when HWNAS_VERBOSE is set)."""
    env = os.environ if env is None else env
    if env.get("HWNAS_VERBOSE", "") not in ("", "0"):
        return False
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    for pattern in _MESSAGES:
        warnings.filterwarnings("ignore", message=pattern)
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\.utils\._pytree")
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"(torchao|litert_torch|ai_edge_torch).*")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # TensorFlow (pulled in by the .tflite converter only; LiteRT's interpreter, which times blocks, does not
    # use it) announces its oneDNN kernels through absl before any log level applies: off, and silent.
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    return True
