"""The model-input contract, models' own facts (docs/ARCHITECTURE.md): the keys of the feature dict a
model receives, the 8-bit dequantisation every frame model applies on the device, and the 5 frames
of a rated segment. The readers (yt8m/data/) produce this contract; yt8m/data/schema.py, the record
format, takes these names from here. Plain Python: no Keras, no yt8m.
"""
VIDEO_INPUT = "features"      # float32 (B, D), D = sum(feature_sizes)
FRAMES_INPUT = "frames"       # uint8 (B, T, D)
NUM_FRAMES_INPUT = "num_frames"  # int32 (B,)
SEGMENT_STARTS_INPUT = "segment_starts"  # int32 (B, S) first frame of each segment, -1 past the video's end
CLIP_INPUT = "clip"           # uint8 (B, T, H, W, 3) RGB clips (the Charades-style clip records)

SEGMENT_FRAMES = 5            # a rated segment is 5 consecutive frames
MAX_QUANTIZED = 2.0           # features live in [-2, 2] before quantisation


def dequantize(q, max_quantized_value: float = MAX_QUANTIZED, min_quantized_value: float = -MAX_QUANTIZED):
    """The official utils.Dequantize: x = q * range/255 + range/512 + min (half-bin bias).

    Works on numpy arrays and on float tensors (the caller casts uint8 first).
    """
    quantized_range = max_quantized_value - min_quantized_value
    scalar = quantized_range / 255.0
    bias = quantized_range / 512.0 + min_quantized_value
    return q * scalar + bias
