"""A finite training set: every example once per epoch, per replica, independent of the others, resumable."""

import torch

from overparam.tasks.sampling import EpochSampler


def generators(seeds):
    return [torch.Generator().manual_seed(seed) for seed in seeds]


def test_each_epoch_shows_every_example_once_in_a_new_order():
    sampler, gens = EpochSampler(examples=12, batch_size=4), generators([1, 2])
    epochs = [torch.cat([sampler.next_indices(gens, "cpu") for _ in range(3)], dim=1) for _ in range(2)]
    for epoch in epochs:
        for replica in epoch:
            assert sorted(replica.tolist()) == list(range(12))
    assert not torch.equal(epochs[0], epochs[1]) and not torch.equal(epochs[0][0], epochs[0][1])


def test_a_partial_last_batch_is_left_out_like_drop_last():
    sampler, gens = EpochSampler(examples=10, batch_size=4), generators([3])
    first = [sampler.next_indices(gens, "cpu") for _ in range(2)]
    assert sampler.batches_per_epoch == 2 and len(set(torch.cat(first, 1)[0].tolist())) == 8


def test_a_replica_draws_the_same_batches_alone_and_among_others():
    among, alone = EpochSampler(9, 3), EpochSampler(9, 3)
    gens_among, gens_alone = generators([5, 6, 7]), generators([6])
    for _ in range(7):
        assert torch.equal(among.next_indices(gens_among, "cpu")[1], alone.next_indices(gens_alone, "cpu")[0])


def test_state_dict_resumes_the_exact_stream():
    reference, gens = EpochSampler(8, 2), generators([4, 9])
    expected = [reference.next_indices(gens, "cpu") for _ in range(11)]
    sampler, gens = EpochSampler(8, 2), generators([4, 9])
    taken = [sampler.next_indices(gens, "cpu") for _ in range(5)]
    state, generator_states = sampler.state_dict(), [g.get_state() for g in gens]
    resumed, gens_resumed = EpochSampler(8, 2), generators([0, 0])
    resumed.load_state_dict(state)
    for generator, generator_state in zip(gens_resumed, generator_states):
        generator.set_state(generator_state)
    taken += [resumed.next_indices(gens_resumed, "cpu") for _ in range(6)]
    assert all(torch.equal(a, b) for a, b in zip(taken, expected))
