"""Personal data: detectors that find it in text with validation (Luhn, mod-97, check keys) and masks."""

from bastion.privacy.detectors import DETECTOR_KINDS, PiiMatch, find_pii, mask_value

__all__ = ["DETECTOR_KINDS", "PiiMatch", "find_pii", "mask_value"]
