"""The Keras trainer: our own training step (tf.function, GradientTape) around Keras's own
optimizers and loss, one process or data-parallel under tf.distribute.

Data-parallel (`replicas.distributed`): a MultiWorkerMirroredStrategy from TF_CONFIG
(xgraph_keras.distribute; make the trainer before TensorFlow runs any op in the process).
Each worker passes its own share to `strategy.run`. Keras 3's TensorFlow optimizer sums the
gradients over the replicas itself inside `apply_gradients` (an all-reduce in replica context,
keras/src/backend/tensorflow/optimizer.py), so each replica's loss is its share's summed
cross-entropy divided by the GLOBAL count plus the L2 term divided by the number of replicas:
the sum is then the gradient of the global batch's mean loss.

BatchNorm: by default each replica normalises with its own share's statistics. The moving
statistics are mirrored variables with aggregation NONE, and TensorFlow updates such a
variable in replica context on that replica only (`_on_write_update_replica` in
tensorflow/python/distribute/values.py): nothing is averaged, each worker keeps the moving
average of its own shares, and the chief's (rank 0's) are the ones a checkpoint holds. The
trainable weights stay identical everywhere. `sync_batch_norm=True` switches every
BatchNormalization to `synchronized` (read at call time, so it is set on the built layers):
the batch moments are all-reduced (as E[x^2] - E[x]^2), and every replica then normalises,
and updates its moving statistics, with the global batch's moments.
"""

from __future__ import annotations

# TensorFlow comes in through framework.py first, which keeps its start-up logs quiet.
from xgraph_keras.framework import keras  # isort: skip

# isort: split
import contextlib
import zlib
from collections.abc import Mapping

import numpy as np
import tensorflow as tf

from xgraph.ir.analysis import AnalysedGraph
from xgraph.training.placement import DEFAULT_PLACEMENT, Placement
from xgraph.training.recipe import TrainingRecipe
from xgraph.training.replicas import Replicas
from xgraph.training.trainer import TOP_K, StepMetrics, regularized_keys, training_graph
from xgraph.weights.initial import Weights
from xgraph_keras.backend import KerasBackend
from xgraph_keras.devices import check_precision, device_scope, dtype_policy
from xgraph_keras.distribute import strategy_for
from xgraph_keras.optimizers import keras_optimizer

SUM = tf.distribute.ReduceOp.SUM
ONE_PROCESS = Replicas()


def _variables_by_key(
    backend: KerasBackend, model: keras.Model, analysed: AnalysedGraph
) -> dict[str, keras.Variable]:
    """Each canonical key's Keras variable (a layer's weights are in its keys' order)."""
    found: dict[str, keras.Variable] = {}
    for node in analysed.graph.nodes:
        keys = [placed.key for placed in backend.placed_weights(analysed, node)]
        if keys:
            found.update(zip(keys, model.get_layer(node.name).weights, strict=True))
    return found


def _seed_generators(model: keras.Model) -> list[keras.random.SeedGenerator]:
    """The random state of every layer that draws (Dropout), in the model's layer order."""
    return [
        value
        for layer in model.layers
        for value in vars(layer).values()
        if isinstance(value, keras.random.SeedGenerator)
    ]


def _stream(seed: int, index: int, rank: int) -> int:
    """The first half of a random layer's seed state: fixed per (seed, layer, replica), so a
    mask depends only on those and the step; replicas draw different masks for their shares."""
    return zlib.crc32(f"{seed}/{index}/{rank}".encode()) & 0x7FFFFFFF


class KerasTrainer:
    """One process's part of a run (the `Trainer` protocol of xgraph.training.trainer)."""

    def __init__(
        self,
        analysed: AnalysedGraph,
        weights: Weights,
        recipe: TrainingRecipe,
        replicas: Replicas,
        sync_batch_norm: bool,
        placement: Placement = DEFAULT_PLACEMENT,
    ) -> None:
        scope = device_scope(placement, replicas)
        check_precision(placement, scope)
        self._device = tf.device(scope) if scope else contextlib.nullcontext()
        self._strategy = strategy_for(replicas)
        self._backend = KerasBackend()
        self._spec = analysed
        self._full_model: keras.Model | None = None
        trained = training_graph(analysed)
        self._analysed = trained.analysed
        with self._strategy.scope(), self._device, dtype_policy(placement.precision):
            self._model = self._backend.build(self._analysed, weights)
            variables = _variables_by_key(self._backend, self._model, self._analysed)
            self._kernels = [variables[key] for key in regularized_keys(self._analysed)]
            trainable = self._model.trainable_variables
            self._optimizer = keras_optimizer(recipe.optimizer, self._kernels, trainable)
            if placement.precision == "fp16-mixed":  # dynamic loss scaling, Keras's own
                self._optimizer = keras.optimizers.LossScaleOptimizer(self._optimizer)
            self._optimizer.build(trainable)
        if sync_batch_norm:
            for layer in self._model.layers:
                if isinstance(layer, keras.layers.BatchNormalization):
                    layer.synchronized = True
        self._streams = [
            _stream(recipe.seed, index, replicas.rank)
            for index in range(len(_seed_generators(self._model)))
        ]
        self._loss = keras.losses.CategoricalCrossentropy(
            from_logits=trained.from_logits,
            label_smoothing=recipe.label_smoothing,
            reduction=None,
        )
        self._weight_decay = float(recipe.weight_decay)
        self._classes = int(self._model.outputs[0].shape[-1])
        image = tf.TensorSpec((None, *self._model.inputs[0].shape[1:]), tf.float32)
        label = tf.TensorSpec((None,), tf.int64)
        self._train = tf.function(
            self._distributed_train, input_signature=[image, label, tf.TensorSpec((), tf.int64)]
        )
        self._evaluate = tf.function(self._distributed_evaluate, input_signature=[image, label])

    @property
    def where(self) -> str:
        """The device TensorFlow placed the weights on (`CPU:0`, `GPU:0`)."""
        device = self._model.trainable_variables[0].value.device
        return device.rpartition("device:")[2] or device

    @property
    def model(self) -> keras.Model:
        """The whole spec's model (softmax included) carrying the current weights, for export:
        made outside the strategy, with plain (unsynchronised) BatchNorm."""
        if self._full_model is None:
            self._full_model = self._backend.build(self._spec, self.weights())
        else:
            self._backend.set_weights(self._full_model, self._spec, self.weights())
        return self._full_model

    def _l2(self) -> tf.Tensor:
        if not self._weight_decay or not self._kernels:
            return tf.constant(0.0)
        return self._weight_decay * tf.add_n([tf.reduce_sum(tf.square(k)) for k in self._kernels])

    def _sums(
        self, loss_sum: tf.Tensor, correct: tf.Tensor, count: tf.Tensor, l2: tf.Tensor
    ) -> tf.Tensor:
        """[loss sum (L2 once per example), correct, count] of this share, summed over the
        replicas (every replica takes part)."""
        local = tf.stack([loss_sum + l2 * count, correct, count])
        return tf.distribute.get_replica_context().all_reduce(SUM, local)

    def _replica_train(self, images: tf.Tensor, labels: tf.Tensor, step: tf.Tensor) -> tf.Tensor:
        context = tf.distribute.get_replica_context()
        count = tf.cast(tf.shape(labels)[0], tf.float32)
        global_count = context.all_reduce(SUM, count)
        for generator, stream in zip(_seed_generators(self._model), self._streams, strict=True):
            generator.state.assign(tf.stack([tf.constant(stream, tf.int64), step]))
        targets = tf.one_hot(labels, self._classes)
        variables = self._model.trainable_variables
        with tf.GradientTape() as tape:
            outputs = tf.cast(self._model([images], training=True), tf.float32)
            per_example = self._loss(targets, outputs)
            l2 = self._l2()
            replicas = float(context.num_replicas_in_sync)
            scaled = tf.reduce_sum(per_example) / global_count + l2 / replicas
            if isinstance(self._optimizer, keras.optimizers.LossScaleOptimizer):
                scaled = self._optimizer.scale_loss(scaled)
        gradients = tape.gradient(scaled, variables)
        sums = self._sums(tf.reduce_sum(per_example), _correct(outputs, labels), count, l2)
        self._optimizer.apply_gradients(zip(gradients, variables, strict=True))
        return sums

    def _distributed_train(self, images: tf.Tensor, labels: tf.Tensor, step: tf.Tensor):
        result = self._strategy.run(self._replica_train, args=(images, labels, step))
        return self._strategy.experimental_local_results(result)[0]

    def _replica_evaluate(self, images: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
        """This share's sums (StepMetrics.from_sums), all-reduced. An empty share (validation's
        last batch over more replicas than rows) does not run the model: oneDNN's matmul
        refuses 0-row inputs on AVX-512 CPUs; it contributes zeros to the all-reduce, which
        every replica must join. in_top_k counts a label tied with the k-th score as in."""
        classes = self._classes

        def run_model() -> tf.Tensor:
            outputs = tf.cast(self._model([images], training=False), tf.float32)
            per_example = self._loss(tf.one_hot(labels, classes), outputs)
            right = tf.equal(tf.argmax(outputs, axis=-1, output_type=tf.int64), labels)
            in_top = tf.math.in_top_k(labels, outputs, min(TOP_K, classes))
            per_class = [
                tf.math.bincount(
                    tf.cast(labels, tf.int32),
                    weights=weights,
                    minlength=classes,
                    maxlength=classes,
                    dtype=tf.float32,
                )
                for weights in (None, tf.cast(right, tf.float32), tf.cast(in_top, tf.float32))
            ]
            head = tf.stack(
                [
                    tf.reduce_sum(per_example),
                    tf.reduce_sum(tf.cast(right, tf.float32)),
                    tf.reduce_sum(tf.cast(in_top, tf.float32)),
                ]
            )
            return tf.concat([head, per_class[0], per_class[1], per_class[2]], axis=0)

        count = tf.cast(tf.shape(labels)[0], tf.float32)
        sums = tf.cond(count > 0, run_model, lambda: tf.zeros((3 + 3 * classes,), tf.float32))
        local = tf.concat([sums[:3], [count], sums[3:]], axis=0)
        local = tf.tensor_scatter_nd_add(local, [[0]], [self._l2() * count])
        return tf.distribute.get_replica_context().all_reduce(SUM, local)

    def _distributed_evaluate(self, images: tf.Tensor, labels: tf.Tensor):
        result = self._strategy.run(self._replica_evaluate, args=(images, labels))
        return self._strategy.experimental_local_results(result)[0]

    def train_step(
        self, images: np.ndarray, labels: np.ndarray, learning_rate: float, step: int
    ) -> StepMetrics:
        self._optimizer.learning_rate = float(learning_rate)
        with self._device:
            sums = self._train(_images(images), _labels(labels), tf.constant(step, tf.int64))
        return _metrics(sums)

    def evaluate(self, images: np.ndarray, labels: np.ndarray) -> StepMetrics:
        with self._device:
            sums = self._evaluate(_images(images), _labels(labels))
        return StepMetrics.from_sums(sums.numpy(), self._classes)

    def close(self) -> None:
        """A barrier (an all-reduce every worker joins), so that no worker exits while the
        chief still writes the model: TensorFlow's coordination service takes a worker that
        stops sending heartbeats for a crashed one and aborts the others' collectives."""
        if self._strategy.num_replicas_in_sync > 1:
            self._barrier()

    @tf.function
    def _barrier(self) -> tf.Tensor:
        def join() -> tf.Tensor:
            return tf.distribute.get_replica_context().all_reduce(SUM, tf.zeros(()))

        return self._strategy.experimental_local_results(self._strategy.run(join))[0]

    def weights(self) -> Weights:
        return self._backend.get_weights(self._model, self._analysed)

    def optimizer_state(self) -> dict[str, np.ndarray]:
        state = {_state_key(v): np.array(v.numpy()) for v in self._optimizer.variables}
        if len(state) != len(self._optimizer.variables):
            raise AssertionError("two optimizer variables share a name")
        return state

    def load_state(self, weights: Weights, optimizer_state: Mapping[str, np.ndarray]) -> None:
        variables = {_state_key(variable): variable for variable in self._optimizer.variables}
        if set(variables) != set(optimizer_state):
            missing = sorted(set(variables) - set(optimizer_state))
            unknown = sorted(set(optimizer_state) - set(variables))
            raise ValueError(
                f"the optimizer state does not fit this trainer: missing {missing}, "
                f"unknown {unknown}"
            )
        self._backend.set_weights(self._model, self._analysed, weights)
        for path, variable in variables.items():
            variable.assign(np.asarray(optimizer_state[path]))


def _state_key(variable: keras.Variable) -> str:
    """An optimizer variable's own name (`iteration`, `conv_kernel_momentum`), not its path:
    the path starts with the optimizer's name and the scopes around it, which Keras numbers
    when the process has made others, and a checkpoint must resume in any process."""
    return variable.name


def _correct(outputs: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """How many rows the model classifies right, as float32 (it is all-reduced with the loss)."""
    predicted = tf.argmax(outputs, axis=-1, output_type=tf.int64)
    return tf.reduce_sum(tf.cast(tf.equal(predicted, labels), tf.float32))


def _images(images: np.ndarray) -> tf.Tensor:
    return tf.convert_to_tensor(np.asarray(images, dtype=np.float32))


def _labels(labels: np.ndarray) -> tf.Tensor:
    return tf.convert_to_tensor(np.asarray(labels, dtype=np.int64))


def _metrics(sums: tf.Tensor) -> StepMetrics:
    loss_sum, correct, count = (float(value) for value in sums.numpy())
    return StepMetrics(loss_sum=loss_sum, correct=round(correct), count=round(count))


def make_trainer(
    analysed: AnalysedGraph,
    weights: Weights,
    recipe: TrainingRecipe,
    replicas: Replicas = ONE_PROCESS,
    sync_batch_norm: bool = False,
    placement: Placement = DEFAULT_PLACEMENT,
) -> KerasTrainer:
    """A trainer for `analysed`'s model from `weights`. Data-parallel: call it before
    TensorFlow runs any op in the process (the multi-worker strategy must come first)."""
    return KerasTrainer(analysed, weights, recipe, replicas, sync_batch_norm, placement)
