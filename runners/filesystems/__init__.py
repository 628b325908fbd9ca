"""Real file systems on loopback (GlusterFS, JuiceFS) started and stopped for I/O studies."""
