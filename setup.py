"""Build the optional C accelerator of the ETF codec; everything else is in pyproject.toml.

``optional=True``: without a compiler (or Python headers) the build only warns and
the package falls back to the pure-Python codec.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "axon_port.codecs._etf_speedups",
            ["src/axon_port/codecs/_etf_speedups.c"],
            optional=True,
        )
    ]
)
