"""Video pose tracks, store-free: multi-person tracking, keyframe interpolation and
temporal smoothing.

Example:
    >>> from posekit.skeleton import get_preset
    >>> from posekit.tracking import PoseTracker, TrackerOptions, track_video
    >>> tracker = PoseTracker(get_preset("coco17"), TrackerOptions(min_hits=3))
    >>> track_video(tracker, {})  # {frame_index: [Instance, ...]} -> same, with track ids
    {}
"""

from posekit.tracking.interpolation import (
    InterpolationError,
    TrackFrame,
    instance_at,
    interpolate_between,
    interpolate_track,
    track_segments,
)
from posekit.tracking.smoothing import (
    OneEuroFilter,
    OneEuroOptions,
    OneEuroSmoother,
    SmoothingError,
    mean_acceleration,
    one_euro_smooth,
    person_size,
    savgol_smooth,
    smooth_track,
    smooth_video,
    track_arrays,
    track_jitter,
    video_jitter,
)
from posekit.tracking.tracker import (
    BackfillingTracker,
    PoseTracker,
    Tracker,
    TrackerError,
    TrackerOptions,
    detection_score,
    track_video,
)
from posekit.tracking.tracks import TrackError, frames_from_tracks, tracks_by_id

__all__ = [
    "BackfillingTracker",
    "InterpolationError",
    "OneEuroFilter",
    "OneEuroOptions",
    "OneEuroSmoother",
    "PoseTracker",
    "SmoothingError",
    "TrackError",
    "TrackFrame",
    "Tracker",
    "TrackerError",
    "TrackerOptions",
    "detection_score",
    "frames_from_tracks",
    "instance_at",
    "interpolate_between",
    "interpolate_track",
    "mean_acceleration",
    "one_euro_smooth",
    "person_size",
    "savgol_smooth",
    "smooth_track",
    "smooth_video",
    "track_arrays",
    "track_jitter",
    "track_segments",
    "track_video",
    "tracks_by_id",
    "video_jitter",
]
