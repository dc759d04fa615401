"""keras_gon.data.preprocessing: the one image preprocessing, static and in serving graphs."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from keras_gon.data.preprocessing import preprocess_images


def _dynamic(image_shape):
    """preprocess_images traced with unknown height and width, as a serving signature is."""
    return tf.function(
        lambda images: preprocess_images(images, image_shape),
        input_signature=[tf.TensorSpec((None, None, None, 1), tf.float32)],
    )


RESAMPLING_OPS = {"ResizeBilinear", "ScaleAndTranslate"}


def test_a_request_at_the_model_size_is_not_resampled(mnist10k):
    images = (mnist10k["x_test"][:16, ..., None] / 255.0).astype("float32")  # 28x28 digits
    function = _dynamic((28, 28, 1))
    np.testing.assert_array_equal(function(images).numpy(), images)
    # The resampling kernel (the costly part of a serving request) sits only in the branch
    # taken when the size differs: a request at the model's size never runs it.
    graph = function.get_concrete_function().graph.as_graph_def()
    branches = [node for node in graph.node if node.op in ("If", "StatelessIf")]
    assert len(branches) == 1 and not RESAMPLING_OPS & {node.op for node in graph.node}
    library = {f.signature.name: {n.op for n in f.node_def} for f in graph.library.function}
    same_size = library[branches[0].attr["then_branch"].func.name]
    other_size = library[branches[0].attr["else_branch"].func.name]
    assert not RESAMPLING_OPS & same_size and RESAMPLING_OPS & other_size


def test_a_request_of_another_size_is_resized_as_the_pipelines_resize(mnist10k):
    images = (mnist10k["x_test"][:16, ..., None] / 255.0).astype("float32")  # 28x28
    for size in (32, 20):  # up and down
        static = preprocess_images(tf.constant(images), (size, size, 1)).numpy()
        dynamic = _dynamic((size, size, 1))(images).numpy()
        assert dynamic.shape == static.shape == (16, size, size, 1)
        np.testing.assert_allclose(dynamic, static, atol=1e-5)
