"""The computing platform and the number of XLA host devices: process-wide, set before jax
initializes its backends."""

from __future__ import annotations

import os
import re

import jax

from brainstate.environ._keys import (
    HOST_DEVICE_COUNT,
    PLATFORM,
    _check_device_count,
    _check_platform,
    _public,
)
from brainstate.environ._state import EnvironmentState, _env


@_public
def set_platform(platform: str, env: EnvironmentState | None = None) -> None:
    """Select the computing platform jax uses by default (``jax_platform_name``).

    Takes effect only before jax initializes its backends, so call it at program start.

    Parameters
    ----------
    platform : str
        One of :data:`SUPPORTED_PLATFORMS`.
    env : EnvironmentState, optional
        Whose ``'platform'`` behaviour to run; the default environment if omitted.

    Raises
    ------
    ValueError
        For an unsupported platform.

    Examples
    --------
    >>> import brainstate.environ as environ
    >>> environ.set_platform('cpu')  # doctest: +SKIP
    """
    _check_platform(platform)
    jax.config.update("jax_platform_name", platform)
    _env(env)._notify({PLATFORM: platform})


@_public
def get_platform() -> str:
    """Return the platform of jax's first device: ``'cpu'``, ``'gpu'`` or ``'tpu'``.

    Examples
    --------
    >>> import brainstate.environ as environ
    >>> environ.get_platform() in environ.SUPPORTED_PLATFORMS
    True
    """
    return jax.devices()[0].platform


_DEVICE_COUNT_FLAG = re.compile(r"--xla_force_host_platform_device_count=(\S+)")


@_public
def set_host_device_count(n: int, env: EnvironmentState | None = None) -> None:
    """Make XLA expose ``n`` host (CPU) devices, e.g. for ``jax.pmap`` or sharding on CPU.

    Writes ``--xla_force_host_platform_device_count=n`` into the ``XLA_FLAGS`` environment
    variable (replacing an earlier count), so it takes effect only before jax initializes its
    backends.

    Parameters
    ----------
    n : int
        Number of devices, at least 1.
    env : EnvironmentState, optional
        Whose ``'host_device_count'`` behaviour to run; the default environment if omitted.

    Raises
    ------
    ValueError
        If ``n`` is not a positive int.

    Examples
    --------
    >>> import brainstate.environ as environ
    >>> environ.set_host_device_count(4)  # doctest: +SKIP
    """
    _check_device_count(n)
    others = _DEVICE_COUNT_FLAG.sub("", os.environ.get("XLA_FLAGS", "")).split()
    os.environ["XLA_FLAGS"] = " ".join([f"--xla_force_host_platform_device_count={int(n)}",
                                        *others])
    _env(env)._notify({HOST_DEVICE_COUNT: int(n)})


@_public
def get_host_device_count() -> int:
    """Return the host device count requested in ``XLA_FLAGS`` (1 when none is).

    Examples
    --------
    >>> import brainstate.environ as environ
    >>> environ.get_host_device_count() >= 1
    True
    """
    match = _DEVICE_COUNT_FLAG.search(os.environ.get("XLA_FLAGS", ""))
    return int(match.group(1)) if match and match.group(1).isdigit() else 1
