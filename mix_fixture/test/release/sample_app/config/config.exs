import Config

# `mix axon_port.setup` builds priv/python (carried by `mix release`) with these.
config :axon_port, python: [extras: [], requirements: []]
