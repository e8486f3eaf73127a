"""biaslib: measure and reduce social bias that text-to-image models put into data.

The package is a library (no argparse); runnable entry points live in :mod:`biaslib.cli`.
Importing ``biaslib`` is cheap: heavy dependencies (torch, diffusers, open_clip) are imported
by the submodules that need them.
"""

__version__ = "0.1.0"
