"""keras-gon: Gradient Origin Networks (Bond-Taylor & Willcocks, ICLR 2021) in Keras 3.

The models, layers and losses are imported on first use (`keras_gon.namespace`), so that
`import keras_gon` (and `keras-gon --help`) does not import TensorFlow.
`keras.saving.load_model` finds keras-gon's classes once they are registered with Keras:
`import keras_gon` registers them when Keras is already imported, or else as soon as
Keras is imported (in either order).
"""

from keras_gon.namespace import (  # the package's face: lazy attributes
    __all__,  # noqa: F401
    __dir__,  # noqa: F401
    __getattr__,  # noqa: F401
    __version__,  # noqa: F401
    register_when_keras_is_imported,
    register_with_keras,  # noqa: F401
)

register_when_keras_is_imported()
