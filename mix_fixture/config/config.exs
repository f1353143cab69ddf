import Config

# Only for this package's own development and tests (a dependency's config is
# never loaded by the apps that use it): the repository's .venv, which
# ./scripts/setup builds, is the worker's Python here.
config :axon_port, python: [venv: Path.expand("../../.venv", __DIR__)]
