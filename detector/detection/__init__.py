"""Detection (pure): per-frame emissions against a CFAR floor and a site baseline, tracks over
frames, classification, whitelist and alert decisions. Theory: ``THEORY.md`` §1."""

from detector.detection._classify import CLASSES, classify_track
from detector.detection._cfar import DetectionCache, batch_floor, os_cfar_floor
from detector.detection._decision import CHEATING_BANDS_HZ, DecisionConfig, ExamSession, decide, score_track
from detector.detection._declared_jammers import DeclaredJammer
from detector.detection._emissions import detect_frame, detect_frames, detect_stack
from detector.detection._integration import IntegrationConfig
from detector.detection._results import DetectionConfig, Emission, FrameResult, StackResult
from detector.detection._thresholds import noise_quantile_ratio, pfa_for_alert_rate, threshold_db, threshold_ratio
from detector.detection._tracking import Reading, Track, Tracker, TrackerConfig
from detector.detection._whitelist import Channel, Whitelist, append_channel, load_whitelist

__all__ = [
    "CLASSES", "classify_track", "CHEATING_BANDS_HZ", "DecisionConfig", "ExamSession", "decide", "score_track",
    "DetectionCache", "DetectionConfig", "Emission", "FrameResult", "StackResult", "detect_frame", "detect_frames",
    "detect_stack", "batch_floor", "os_cfar_floor",
    "noise_quantile_ratio", "pfa_for_alert_rate", "threshold_db", "threshold_ratio",
    "DeclaredJammer", "IntegrationConfig",
    "Reading", "Track", "Tracker", "TrackerConfig", "Channel", "Whitelist", "load_whitelist", "append_channel",
]
