"""Build the optional C accelerators (the ETF codec's, the history cache's copy);
everything else is in pyproject.toml.

``optional=True``: without a compiler (or Python headers) the build only warns and
the package falls back to the pure-Python code.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "axon_port.codecs._etf_speedups",
            ["src/axon_port/codecs/_etf_speedups.c"],
            optional=True,
        ),
        Extension(
            "axon_port.agents._copy_speedups",
            ["src/axon_port/agents/_copy_speedups.c"],
            optional=True,
        ),
    ]
)
