"""`python -m keras_gon`: the keras-gon command line."""

import sys

from keras_gon.cli import main

sys.exit(main())
