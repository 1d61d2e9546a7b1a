"""The ``gcs`` flavor: Google Cloud Storage (and fake-gcs-server) through gcsfs."""

from __future__ import annotations

import os

from artifactfs.stores.flavor import Flavor

# gcsfs otherwise probes a gRPC API on every bucket, which hangs against
# emulators and private endpoints; must be set before gcsfs is imported.
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")


class GCSFlavor(Flavor):
    name = "gcs"
    schemes = ("gs", "gcs")
    protocol = "gs"
    module = "gcsfs"
    extra = "gcs"
    secret_options = frozenset({"token"})
    env_credentials = {"token": "GOOGLE_APPLICATION_CREDENTIALS"}
    default_options = {"use_listings_cache": False}
    option_help = {
        "project": "Google Cloud project",
        "token": "path to a service-account JSON, 'google_default', 'anon' (secret)",
        "endpoint_url": "URL of a GCS-compatible server",
    }
