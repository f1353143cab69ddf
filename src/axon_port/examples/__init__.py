"""Example modules for ``--module``: importing one registers its tools and agents.

``axon_port.examples.bank_support`` is the design discussion's bank-support
agent (``python -m axon_port --module axon_port.examples.bank_support``).
"""
