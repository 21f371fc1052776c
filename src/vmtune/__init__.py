"""vmtune: topology-aware tuning, audit and verification of libvirt/KVM guests."""

__all__ = ["__version__"]

__version__ = "0.1.0"
