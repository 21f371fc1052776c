"""The world: sysfs, files, libvirt, host probes. The only package that does IO."""
