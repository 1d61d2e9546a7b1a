"""The read-only FUSE mount: every store flavor as one tree of pipelines,
runs, steps and artifact versions, served from the index.

Modules, one job each: ``inodes`` (numbering), ``nodes`` (what the tree
hands out), ``records`` (what the index said, cached), ``lookup`` (names),
``listing`` (folders), ``documents`` (the JSON documents), ``xattrs``
(extended attributes), ``fs`` (the tree they make, no FUSE), ``cache``
(on-disk blocks), ``reader`` (payload bytes), ``diskpool`` (the threads
that wait on the disk for it), ``fuse`` (the pyfuse3
adapter), ``daemon`` (lifecycle), ``users`` (which processes use a mount).
Names are escaped by ``index.names``, which the web view shares. Imports
only ``index``, ``stores``, settings and errors.
"""
