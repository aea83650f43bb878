"""SqueezeNAS: proxyless, hardware-aware architecture search for semantic segmentation."""

__version__ = "0.1.0"
