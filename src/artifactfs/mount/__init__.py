"""The read-only FUSE mount: every store flavor as one tree of pipelines,
runs, steps and artifact versions, served from the index.

Modules, one job each: ``names`` (escaping), ``inodes`` (numbering),
``fs`` (the tree, no FUSE), ``cache`` (on-disk blocks), ``reader``
(payload bytes), ``fuse`` (the pyfuse3 adapter), ``daemon`` (lifecycle).
Imports only ``index``, ``stores``, settings and errors.
"""
