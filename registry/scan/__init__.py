"""The scan room: what an image or a Spack build holds (packages, private keys,
setuid files), read from its layers as streams, off the request path."""
