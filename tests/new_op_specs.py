"""Small specs that tests of the newer ops share."""

# An Inception-ResNet block on a grouped stem, cropped as NASNet crops: every new op, with
# BatchNorms after grouped convolutions (trained, and folded by --optimize).
GROUPED_SPEC = """\
xgraph: 1
name: vocabulary
inputs: [{name: image, shape: [9, 9, 4]}]
nodes:
  - {name: stem, op: conv2d, filters: 8, kernel_size: 3, groups: 2, padding: same, use_bias: false}
  - {name: stem_bn, op: batch_norm, momentum: 0.9}
  - {name: stem_act, op: activation, activation: relu}
  - {name: branch_0, op: conv2d, filters: 4, kernel_size: 1, activation: relu}
  - {name: branch_1a, op: conv2d, filters: 4, kernel_size: 1, inputs: [stem_act]}
  - {name: branch_1b, op: conv2d, filters: 4, kernel_size: 3, groups: 4, padding: same,
     use_bias: false}
  - {name: branch_1b_bn, op: batch_norm, momentum: 0.9}
  - {name: mixed, op: concat, inputs: [branch_0, branch_1b_bn]}
  - {name: up, op: conv2d, filters: 8, kernel_size: 1}
  - {name: residual, op: scaled_add, scale: 0.17, inputs: [stem_act, up]}
  - {name: residual_act, op: activation, activation: relu}
  - {name: crop, op: cropping2d, cropping: [[1, 0], [1, 0]]}
  - {name: gap, op: global_avg_pool}
  - {name: logits, op: dense, units: 3}
"""
