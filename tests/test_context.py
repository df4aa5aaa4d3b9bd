"""Segments in their video's context (issue 16): the whole-video segment reader, the context-aware
wrapper, one-pass eval/inference."""
import numpy as np
import pytest

from yt8m.data import readers, schema, video_segments

SPEC = schema.FeatureSpec(("rgb", "audio"), (1024, 128))


def _rows_by_pair(dataset):
    """{(segment id, class): (target row, weight row)} of every rated (segment, class) pair."""
    rows = {}
    for features, targets, weights in dataset:
        ids, targets, weights = features["segment_ids"].numpy(), targets.numpy(), weights.numpy()
        for b, s, c in zip(*np.nonzero(weights)):
            rows[(ids[b, s].decode(), int(c))] = (targets[b, s], weights[b, s])
    return rows


def test_video_reader_carries_every_rating_as_the_segment_reader_does(synthetic_data):
    """Each rated (segment, class) of the per-segment reader is a mark of the whole-video reader, with the
    same target row (video labels, the rated classes at their scores); segments past a video's end never
    appear (start -1, masked, no id)."""
    pattern, c = synthetic_data.frame_validate, synthetic_data.num_classes
    whole = video_segments.video_segment_dataset(pattern, num_classes=c, feature_spec=SPEC, batch_size=20)
    for features, targets, weights in whole.take(2):
        starts, mask = features["segment_starts"].numpy(), features["segment_mask"].numpy()
        num_frames = features["num_frames"].numpy()[:, None]
        assert ((starts >= 0) == mask).all() and (starts[mask] < np.broadcast_to(num_frames, mask.shape)[mask]).all()
        assert (features["segment_ids"].numpy()[~mask] == b"").all()
        assert (weights.numpy()[~mask] == 0).all()
    rows = _rows_by_pair(whole)
    count = 0
    for features, labels, _ in readers.segment_dataset(pattern, num_classes=c, feature_spec=SPEC, batch_size=20):
        for segment_id, rated, label in zip(features["id"].numpy(), features["segment_class"].numpy(),
                                            labels.numpy()):
            target, weight = rows[(segment_id.decode(), int(rated))]
            assert weight[rated] == 1
            marked = weight > 0   # the other classes this segment is rated for
            np.testing.assert_array_equal(target[~marked], label[~marked])
            assert target[rated] == label[rated]
            count += 1
    assert count == len(rows) > 0


def test_video_reader_on_test_files_lists_the_segments_inference_cuts(synthetic_data):
    pattern, c = synthetic_data.frame_test, synthetic_data.num_classes
    whole = video_segments.video_segment_dataset(pattern, num_classes=c, feature_spec=SPEC, batch_size=120,
                                                 rated=False)
    ids = []
    for features, targets, _ in whole:
        assert targets.shape[-1] == 0
        ids += features["segment_ids"].numpy()[features["segment_mask"].numpy()].tolist()
    cut = []
    for features, _, _ in readers.segment_dataset(pattern, num_classes=c, feature_spec=SPEC, batch_size=120,
                                                  rated=False):
        cut += features["id"].numpy().tolist()
    assert sorted(ids) == sorted(cut) and len(set(ids)) == len(ids)
