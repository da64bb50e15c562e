"""ReplicaMLP's orthogonal start (model.init=orthogonal): orthogonal weights, zero biases, per-replica streams."""

import torch

from overparam.jobs.identity import identity
from overparam.nets.mlp import ReplicaMLP
from overparam.seeds import replica_seeds


def make(seeds, init="orthogonal"):
    net = ReplicaMLP(len(seeds), inputs=7, outputs=1, hidden=[1, 1], m_factor=5, init=init)
    net.reset_parameters(seeds)
    return net


def test_orthogonal_weights_and_zero_biases_in_every_replica():
    net = make(replica_seeds(0, 3))
    for layer in net.layers:
        assert torch.count_nonzero(layer.bias) == 0
        for weight in layer.weight:  # [fan_in, fan_out]: the shorter side is orthonormal
            gram = weight.T @ weight if weight.shape[0] >= weight.shape[1] else weight @ weight.T
            torch.testing.assert_close(gram, torch.eye(len(gram)), atol=1e-5, rtol=0)
    assert not torch.equal(net.layers[0].weight[0], net.layers[0].weight[1])


def test_a_replica_starts_the_same_among_others_or_alone():
    seeds = replica_seeds(1, 3)
    among, alone = make(seeds), make(seeds[2:])
    for together, single in zip(among.parameters(), alone.parameters()):
        assert torch.equal(together[2], single[0])


def test_the_default_start_is_unchanged_and_keeps_earlier_results_valid():
    seeds = replica_seeds(0, 2)
    assert torch.count_nonzero(make(seeds, init="uniform").layers[0].bias) > 0
    mlp = {"_target_": "overparam.nets.mlp.ReplicaMLP", "m_factor": 2}
    assert identity({"model": {**mlp, "init": "uniform"}}) == identity({"model": mlp})  # written before `init`
    assert identity({"model": {**mlp, "init": "orthogonal"}}) != identity({"model": mlp})
